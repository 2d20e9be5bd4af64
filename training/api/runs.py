"""Training runs over the API: list, start (managers), read, live state, cancel (managers).
Scoped through the project: researchers read, raters get 403, outsiders 404."""
from __future__ import annotations

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.models import DatasetSnapshot, Role
from annotation.selectors import project_get_for_user
from training.api.serializers import RunCreateSerializer, RunStateSerializer, TrainingRunSerializer
from training.recipes import catalog
from training.runs.services import ConfigError, recipe_config_schema, run_cancel, run_create
from training.registry.selectors import base_models_for_training, reward_models_for_runs
from training.runs.selectors import run_get_for_user, run_list_for_user
from training.views.runs import run_state

PROJECT_PARAM = OpenApiParameter("project", OpenApiTypes.STR, description="Only runs of this project (slug).")


@extend_schema_view(
    get=extend_schema(summary="Training runs of your projects", parameters=[PROJECT_PARAM]),
    post=extend_schema(summary="Start a training run (project managers)", request=RunCreateSerializer, responses={201: TrainingRunSerializer}),
)
class RunListCreate(generics.ListCreateAPIView):
    serializer_class = TrainingRunSerializer

    def get_queryset(self):
        slug = self.request.query_params.get("project")
        if slug:
            project, _ = project_get_for_user(user=self.request.user, slug=slug, role=Role.RESEARCHER)
            return run_list_for_user(user=self.request.user, project=project)
        return run_list_for_user(user=self.request.user)

    def create(self, request, *args, **kwargs):
        data = RunCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        project, _ = project_get_for_user(user=request.user, slug=values["project"], role=Role.MANAGER)
        snapshot = DatasetSnapshot.objects.filter(project=project, pk=values["snapshot"]).first()
        if snapshot is None:
            raise ValidationError({"snapshot": [f"no snapshot {values['snapshot']} in project {project.slug}"]})
        ref = values["base_model"].strip()
        models = base_models_for_training(user=request.user)
        base_model = (models.filter(pk=int(ref)).first() if ref.isdigit() and len(ref) <= 18 else None) or models.filter(name=ref).first()
        if base_model is None:
            raise ValidationError({"base_model": [f"no registered model {ref!r} you may train from"]})
        reward_model = None
        if values.get("reward_model"):
            rm_ref = str(values["reward_model"]).strip()
            rms = reward_models_for_runs(user=request.user)
            reward_model = (rms.filter(pk=int(rm_ref)).first() if rm_ref.isdigit() and len(rm_ref) <= 18 else None) or rms.filter(name=rm_ref).first()
            if reward_model is None:
                raise ValidationError({"reward_model": [f"no reward model {rm_ref!r} you may use"]})
        try:
            run = run_create(project=project, snapshot=snapshot, base_model=base_model, method=values["method"],
                             use_lora=values["use_lora"], config=values["config"], reward_model=reward_model, created_by=request.user,
                             num_processes=values["num_processes"], distributed=values["distributed"],
                             evaluate_after=values["evaluate_after"])
        except ConfigError as exc:
            field, _, message = str(exc).partition(": ")
            raise ValidationError({field if message else "config": [message or str(exc)]}) from None
        return Response(TrainingRunSerializer(run, context={"request": request}).data, status=status.HTTP_201_CREATED)


@extend_schema(summary="A training run")
class RunDetail(generics.RetrieveAPIView):
    serializer_class = TrainingRunSerializer

    def get_object(self):
        return run_get_for_user(user=self.request.user, run_id=self.kwargs["pk"])


class RunMetrics(APIView):
    @extend_schema(
        summary="Live state of a run: progress, heartbeat, metric points, log tail",
        parameters=[OpenApiParameter("since", OpenApiTypes.INT, description="Skip the first N metric points (you have them).")],
        responses=RunStateSerializer,
    )
    def get(self, request, pk: int):
        run = run_get_for_user(user=request.user, run_id=pk)
        try:
            since = max(int(request.query_params.get("since", 0)), 0)
        except ValueError:
            raise ValidationError({"since": ["an integer"]}) from None
        return Response(run_state(run, since=since))


class RunCancel(APIView):
    @extend_schema(summary="Cancel a run (project managers): queued runs stop at once, running ones within a few steps",
                   request=None, responses=TrainingRunSerializer)
    def post(self, request, pk: int):
        run = run_get_for_user(user=request.user, run_id=pk, role=Role.MANAGER)
        return Response(TrainingRunSerializer(run_cancel(run=run), context={"request": request}).data)


class RecipeList(APIView):
    @extend_schema(summary="Training methods: what each reads, accepts and produces, its metrics and hyperparameters",
                   responses={200: {"type": "array", "items": {"type": "object"}}})
    def get(self, request):
        return Response([{**catalog.as_dict(r), "config": recipe_config_schema(r.method)} for r in catalog.all_recipes()])


urlpatterns = [
    path("recipes/", RecipeList.as_view(), name="training-recipes"),
    path("runs/", RunListCreate.as_view(), name="training-runs"),
    path("runs/<id:pk>/", RunDetail.as_view(), name="training-run"),
    path("runs/<id:pk>/metrics/", RunMetrics.as_view(), name="training-run-metrics"),
    path("runs/<id:pk>/cancel/", RunCancel.as_view(), name="training-run-cancel"),
]
