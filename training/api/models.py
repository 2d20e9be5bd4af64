"""The model registry over the API, and reward-model scoring."""
from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from training.api.serializers import ModelArtifactSerializer, ScoreRequestSerializer, ScoreResponseSerializer
from training.registry.models import ModelArtifact
from training.registry.scoring import ScoringError, ScoringUnavailable, score_on_worker
from training.registry.selectors import may_see_models, model_get_for_user, model_list_for_user


@extend_schema(summary="Models you may see: base models, and those trained on your projects")
class ModelList(generics.ListAPIView):
    serializer_class = ModelArtifactSerializer

    def get_queryset(self):
        if not may_see_models(user=self.request.user):
            raise PermissionDenied("The model registry is for researchers and managers")
        return model_list_for_user(user=self.request.user)


@extend_schema(summary="A model with its lineage fields (base_model, run, snapshot)")
class ModelDetail(generics.RetrieveAPIView):
    serializer_class = ModelArtifactSerializer

    def get_object(self):
        return model_get_for_user(user=self.request.user, model_id=self.kwargs["pk"])


class ModelScore(APIView):
    @extend_schema(summary="Score responses to a prompt with a reward model", request=ScoreRequestSerializer,
                   responses={200: ScoreResponseSerializer, 400: None, 503: None},
                   description="Runs on a worker of the `score` queue; 503 when none answers within ARBITER_SCORE_TIMEOUT_SECONDS.")
    def post(self, request, pk: int):
        artifact = model_get_for_user(user=request.user, model_id=pk)
        if artifact.kind != ModelArtifact.Kind.REWARD_MODEL:
            raise ValidationError({"model": [f"{artifact.name} is a {artifact.get_kind_display().lower()}, not a reward model"]})
        body = ScoreRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        # On a `score` worker (training/registry/scoring.py): this process never loads torch.
        try:
            scores = score_on_worker(model=artifact, prompt=body.validated_data["prompt"], responses=body.validated_data["responses"],
                                     weights=body.validated_data.get("weights"))
        except ScoringError as exc:
            raise ValidationError({exc.field: [str(exc)]}) from None
        except ScoringUnavailable as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response({"model": artifact.pk, "scores": [float(s) for s in scores]})


urlpatterns = [
    path("models/", ModelList.as_view(), name="training-models"),
    path("models/<id:pk>/", ModelDetail.as_view(), name="training-model"),
    path("models/<id:pk>/score/", ModelScore.as_view(), name="training-model-score"),
]
