"""How a project picks the next item, over the API (annotation/selection.py).

GET  /api/projects/<slug>/selection/           researchers and managers: the setting and the last scoring job
PUT  /api/projects/<slug>/selection/           managers: {"selection": "fewest"|"random"|"uncertain", "selection_model": id|null,
                                               "selection_weights": {"helpfulness": 1, "verbosity": -0.5}|null}
POST /api/projects/<slug>/selection/refresh/   managers: score the pending items again (uncertain only)
"""
from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import hooks
from annotation.models import Project, Role
from annotation.selection import SelectionError, priorities_refresh, selection_set
from annotation.selectors import project_get_for_user


class SelectionSerializer(serializers.Serializer):
    selection = serializers.ChoiceField(choices=Project.Selection.choices)
    selection_model = serializers.IntegerField(allow_null=True, required=False, min_value=1, max_value=2**63 - 1,
                                               help_text="A reward model's id; null: the newest reward model trained on this project.")
    # Parsed and checked against the model's heads by training (the scorer), not here: annotation
    # knows nothing of heads. Errors come back keyed by the field they name ("selection_weights.verbosity").
    selection_weights = serializers.JSONField(
        allow_null=True, required=False,
        help_text="A multi-objective reward model's weights, {attribute: weight} (-100..100); null or {}: the weights it was saved with. "
                  "Refused for a single-head model.")
    selection_attributes = serializers.ListField(child=serializers.CharField(), read_only=True, allow_null=True,
                                                 help_text="The attributes of the model that scores now; null: a single head, or none.")
    status = serializers.JSONField(read_only=True, source="selection_status")


def _payload(project: Project) -> dict:
    scorer = hooks.uncertainty
    return {
        "selection": project.selection,
        "selection_model": scorer.model_chosen(project=project) if scorer else None,
        "selection_weights": scorer.model_weights(project=project) if scorer else {},
        "selection_attributes": scorer.model_attributes(project=project) if scorer else None,
        "status": project.selection_status,
    }


class SelectionView(APIView):
    serializer_class = SelectionSerializer

    @extend_schema(summary="How the project picks the next item", responses=SelectionSerializer)
    def get(self, request: Request, slug: str) -> Response:
        project, _ = project_get_for_user(user=request.user, slug=slug, role=Role.RESEARCHER)
        return Response(_payload(project))

    @extend_schema(summary="Change how the project picks the next item", request=SelectionSerializer, responses=SelectionSerializer)
    def put(self, request: Request, slug: str) -> Response:
        project, _ = project_get_for_user(user=request.user, slug=slug, role=Role.MANAGER)
        data = SelectionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            selection_set(project=project, selection=data.validated_data["selection"], model_id=data.validated_data.get("selection_model"),
                          weights=data.validated_data.get("selection_weights"), user=request.user)
        except SelectionError as exc:
            field, _, message = str(exc).partition(": ")
            raise ValidationError({field: [message]}) from None
        return Response(_payload(project))


class SelectionRefreshView(APIView):
    serializer_class = SelectionSerializer

    @extend_schema(summary="Score the pending items again with the reward model", request=None, responses=SelectionSerializer)
    def post(self, request: Request, slug: str) -> Response:
        project, _ = project_get_for_user(user=request.user, slug=slug, role=Role.MANAGER)
        if not priorities_refresh(project=project, reason="asked for"):
            raise ValidationError({"selection": ["the project does not order by a reward model's uncertainty, or has no reward model"]})
        return Response(_payload(project), status=status.HTTP_202_ACCEPTED)


urlpatterns = [
    path("projects/<slug:slug>/selection/", SelectionView.as_view(), name="api-selection"),
    path("projects/<slug:slug>/selection/refresh/", SelectionRefreshView.as_view(), name="api-selection-refresh"),
]
