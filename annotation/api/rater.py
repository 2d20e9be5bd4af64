"""The rater API: next item (a lease), submit, skip, progress, and the caller's judgments.

Thin views: parse, scope through annotation.selectors, call one service. Another rater's
assignment does not exist for the caller (404), exactly like a project they are not on.
Researchers may read judgments but not label (403), as on the labelling page.
"""
from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import kinds
from annotation.api.serializers_rater import (
    ErrorSerializer,
    JudgmentSerializer,
    LeaseSerializer,
    ProgressSerializer,
    ProjectJudgmentSerializer,
    SubmitSerializer,
    judgment_payload,
    lease_payload,
)
from annotation.assignment import RaterPaused, assignment_skip, lease_next
from annotation.judgments import LeaseLost, judgment_submit
from annotation.models import Assignment, Judgment, Role
from annotation.progress import rater_progress
from annotation.selectors import assignment_get_for_rater, labelling_project_get, project_get_for_user
from annotation.submission import InvalidSubmission, parse_submission

TAG = ["rater"]


class _HotView(APIView):
    # JSON only: choosing between JSON and the browsable HTML renderer on every request was a
    # measurable share of a rater's next+submit (bench/profile_rater.py), and these are calls
    # a client program makes; the schema at /api/docs/ documents them.
    renderer_classes = [JSONRenderer]


def _error(detail: str, code: str, http_status: int) -> Response:
    return Response({"detail": detail, "code": code}, status=http_status)


class NextItemView(_HotView):
    @extend_schema(
        tags=TAG,
        summary="Give me my next item",
        description="Returns the caller's open lease, or leases a new item. Asking again before "
        "answering returns the same lease. Candidates come in on-screen order; answer with their `position`.",
        request=None,
        responses={
            200: LeaseSerializer,
            204: OpenApiResponse(description="Nothing left for this rater."),
            403: OpenApiResponse(ErrorSerializer, description="The rater is paused on this project (code `paused`), or is a researcher there."),
            404: OpenApiResponse(description="No such project, or the caller is not on it."),
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        project, membership = labelling_project_get(user=request.user, slug=slug)
        try:
            assignment = lease_next(project=project, rater=request.user, membership=membership)
        except RaterPaused as paused:
            return _error(f"You are paused on this project: {paused}", "paused", status.HTTP_403_FORBIDDEN)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(lease_payload(assignment, project))


class SubmitView(_HotView):
    @extend_schema(
        tags=TAG,
        summary="Submit a judgment for my assignment",
        request=SubmitSerializer,
        responses={
            201: JudgmentSerializer,
            200: OpenApiResponse(JudgmentSerializer, description="A repeat (same client_key, or the item already answered): the first judgment, unchanged."),
            400: OpenApiResponse(description='Field errors, e.g. {"value": {"winner": ["must be 0, 1, ..."]}}.'),
            404: OpenApiResponse(description="Not the caller's assignment."),
            409: OpenApiResponse(ErrorSerializer, description="The lease was lost (expired and taken by others, or skipped): code `lease_lost`."),
        },
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        assignment = assignment_get_for_rater(user=request.user, assignment_id=assignment_id)
        try:
            judgment, created = judgment_submit(assignment=assignment, rater=request.user, **parse_submission(request.data).as_kwargs())
        except InvalidSubmission as bad:
            # The fields of the request body, DRF's error shape: {"field": ["message"]}.
            return Response({field: [message] for field, message in bad.errors.items()}, status=status.HTTP_400_BAD_REQUEST)
        except kinds.InvalidValue as bad:
            # A part of the answer, under "value": {"value": {"strength": ["must be between ..."]}},
            # or of the other questions' answers: {"answers": {"helpfulness[1]": ["..."]}}.
            top, _, part = bad.field.partition(".")
            if top == "answers":
                return Response({"answers": {part: [bad.message]} if part else [bad.message]}, status=status.HTTP_400_BAD_REQUEST)
            return Response({"value": {bad.field: [bad.message]}}, status=status.HTTP_400_BAD_REQUEST)
        except LeaseLost as lost:
            return _error(str(lost), "lease_lost", status.HTTP_409_CONFLICT)
        return Response(judgment_payload(judgment), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class SkipView(_HotView):
    @extend_schema(
        tags=TAG,
        summary="Skip my assignment",
        description="The item goes back to the pool for other raters; the caller never gets it again.",
        request=None,
        responses={
            200: OpenApiResponse(description='{"assignment": id, "status": "skipped"}'),
            404: OpenApiResponse(description="Not the caller's assignment."),
            409: OpenApiResponse(ErrorSerializer, description="Already answered, skipped or expired: code `not_active`."),
        },
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        assignment = assignment_get_for_rater(user=request.user, assignment_id=assignment_id)
        if not assignment_skip(assignment=assignment, rater=request.user):
            return _error("This assignment is no longer open.", "not_active", status.HTTP_409_CONFLICT)
        return Response({"assignment": assignment.id, "status": Assignment.Status.SKIPPED})


class ProgressView(APIView):
    @extend_schema(tags=TAG, summary="My progress on a project", responses={200: ProgressSerializer})
    def get(self, request: Request, slug: str) -> Response:
        project, _ = project_get_for_user(user=request.user, slug=slug, role=Role.RATER)
        return Response(ProgressSerializer(rater_progress(project=project, rater=request.user)).data)


class JudgmentListView(GenericAPIView):
    serializer_class = JudgmentSerializer

    @extend_schema(
        tags=TAG,
        summary="My judgments on a project (researchers and managers: ?all=1 for everyone's)",
        parameters=[OpenApiParameter("all", bool, description="Every judgment in the project; needs the researcher role.")],
        responses={200: ProjectJudgmentSerializer(many=True), 403: OpenApiResponse(description="?all=1 without the researcher role.")},
    )
    def get(self, request: Request, slug: str) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        # Raters never learn which of their items were gold (gold_correct would tell them).
        serializer_class = ProjectJudgmentSerializer if self.membership.has_role(Role.RESEARCHER) else JudgmentSerializer
        return self.get_paginated_response(serializer_class(page, many=True).data)

    def get_queryset(self):
        # A method rather than inline in get(): the browsable API's HTML page asks for it too.
        everyone = self.request.query_params.get("all", "").lower() in ("1", "true", "yes")
        project, self.membership = project_get_for_user(user=self.request.user, slug=self.kwargs["slug"], role=Role.RESEARCHER if everyone else Role.RATER)
        judgments = Judgment.objects.filter(project=project)
        if not everyone:
            judgments = judgments.filter(rater=self.request.user)
        return judgments


urlpatterns = [
    path("projects/<slug:slug>/next/", NextItemView.as_view(), name="api-rater-next"),
    path("projects/<slug:slug>/progress/", ProgressView.as_view(), name="api-rater-progress"),
    path("projects/<slug:slug>/judgments/", JudgmentListView.as_view(), name="api-rater-judgments"),
    path("assignments/<id:assignment_id>/submit/", SubmitView.as_view(), name="api-rater-submit"),
    path("assignments/<id:assignment_id>/skip/", SkipView.as_view(), name="api-rater-skip"),
]
