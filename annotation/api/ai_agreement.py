"""AI–human agreement over the API, for researchers, managers and staff of the project.

GET /api/projects/<slug>/quality/ai/   per judge and template: Cohen's kappa and raw agreement against
                                       the human consensus and each rater (95 % bootstrap intervals),
                                       and the items where they disagree most
"""
from __future__ import annotations

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.quality.ai_agreement import project_ai_agreement
from annotation.models import Role
from annotation.selectors import project_get_for_user


class AIAgreementView(APIView):
    @extend_schema(summary="Agreement of each AI judge with the human raters, and the items they disagree on most", responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, slug: str) -> Response:
        project, _ = project_get_for_user(user=request.user, slug=slug, role=Role.RESEARCHER)
        return Response(project_ai_agreement(project=project))


urlpatterns = [
    path("projects/<slug:slug>/quality/ai/", AIAgreementView.as_view(), name="api-quality-ai"),
]
