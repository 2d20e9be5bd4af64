"""Quality over the API, for researchers, managers and staff of the project.

GET /api/projects/<slug>/quality/       agreement summary, per-rater table, agreement over time
GET /api/projects/<slug>/quality/questions/   per question: alpha with its interval, per rater, gold
GET /api/projects/<slug>/leaderboard/   Bradley–Terry model scores with 95 % bootstrap intervals
"""
from __future__ import annotations

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.quality.leaderboard import project_leaderboard
from annotation.models import Role
from annotation.quality.figures import project_quality, quality_cached
from annotation.quality.question_figures import project_question_quality
from annotation.selectors import project_get_for_user


class QualityView(APIView):
    @extend_schema(summary="Agreement, consensus, position bias and speed of a project and its raters", responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, slug: str) -> Response:
        project, _ = project_get_for_user(user=request.user, slug=slug, role=Role.RESEARCHER)
        return Response(project_quality(project=project))


class QuestionQualityView(APIView):
    @extend_schema(
        summary="Agreement on each scale and labels question: Krippendorff's alpha with a bootstrap interval, each rater against the others, gold accuracy",
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request, slug: str) -> Response:
        project, _ = project_get_for_user(user=request.user, slug=slug, role=Role.RESEARCHER)
        return Response(project_question_quality(project=project))


class LeaderboardView(APIView):
    @extend_schema(summary="Models ranked by Bradley–Terry on the human comparisons, with bootstrap intervals", responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, slug: str) -> Response:
        project, _ = project_get_for_user(user=request.user, slug=slug, role=Role.RESEARCHER)
        rows = quality_cached(project=project, name="leaderboard", compute=lambda: project_leaderboard(project=project))
        return Response({"project": project.slug, "scale": "elo-like: mean model 1000, 400 points = 10:1 odds", "models": rows})


urlpatterns = [
    path("projects/<slug:slug>/quality/", QualityView.as_view(), name="api-quality"),
    path("projects/<slug:slug>/quality/questions/", QuestionQualityView.as_view(), name="api-quality-questions"),
    path("projects/<slug:slug>/leaderboard/", LeaderboardView.as_view(), name="api-leaderboard"),
]
