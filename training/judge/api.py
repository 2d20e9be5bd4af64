"""The AI judge over the API (under /api/training/). Researchers read; managers start, cancel, resume.

GET  /api/training/projects/<slug>/judge-jobs/     the project's judge jobs
POST /api/training/projects/<slug>/judge-jobs/     {"model": id or name, "template": "default", "limit": N, "tie_band": 0.02}
GET  /api/training/judge-jobs/<id>/                progress, position bias, answers, error
POST /api/training/judge-jobs/<id>/cancel/  and  /resume/
"""
from __future__ import annotations

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.models import Role
from annotation.selectors import project_get_for_user
from training.judge.answers import DEFAULT_TIE_BAND
from training.judge.judges import JudgeError
from training.judge.selectors import judge_job_get_for_user, judge_job_state, judge_jobs_of_project, judge_model_find
from training.judge.services import MAX_LIMIT, judge_job_cancel, judge_job_create, judge_job_resume

TAG = ["AI judge"]


class JudgeJobCreateSerializer(serializers.Serializer):
    model = serializers.CharField(help_text="A registered causal LM, policy or reward model: id or name.")
    template = serializers.CharField(default="default")
    limit = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=MAX_LIMIT, help_text="Only the first N items (by id); empty: every item.")
    tie_band = serializers.FloatField(default=DEFAULT_TIE_BAND, min_value=0.0, max_value=0.49)


def _invalid(exc: Exception) -> ValidationError:
    field, _, message = str(exc).partition(": ")
    return ValidationError({field if message else "non_field_errors": [message or str(exc)]})


class JudgeJobs(APIView):
    @extend_schema(tags=TAG, summary="The project's AI judge jobs", responses=OpenApiTypes.OBJECT)
    def get(self, request, slug: str):
        project, _ = project_get_for_user(user=request.user, slug=slug, role=Role.RESEARCHER)
        return Response({"results": [judge_job_state(j) for j in judge_jobs_of_project(project=project)[:200]]})

    @extend_schema(tags=TAG, summary="Run an AI judge over the project (managers)", request=JudgeJobCreateSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request, slug: str):
        project, _ = project_get_for_user(user=request.user, slug=slug, role=Role.MANAGER)
        data = JudgeJobCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        model = judge_model_find(user=request.user, ref=values["model"])
        if model is None:
            raise ValidationError({"model": [f"no registered judge model {values['model']!r} you may use"]})
        try:
            job = judge_job_create(project=project, model=model, template_name=values["template"], limit=values.get("limit"), tie_band=values["tie_band"], created_by=request.user)
        except JudgeError as exc:
            raise _invalid(exc) from None
        return Response(judge_job_state(job), status=status.HTTP_201_CREATED)


class JudgeJobDetail(APIView):
    @extend_schema(tags=TAG, summary="An AI judge job: progress, position bias, answers", responses=OpenApiTypes.OBJECT)
    def get(self, request, pk: int):
        return Response(judge_job_state(judge_job_get_for_user(user=request.user, job_id=pk)))


class JudgeJobCancel(APIView):
    @extend_schema(tags=TAG, summary="Cancel an AI judge job (managers); what it stored stays", request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request, pk: int):
        job = judge_job_get_for_user(user=request.user, job_id=pk, role=Role.MANAGER)
        return Response(judge_job_state(judge_job_cancel(job=job)))


class JudgeJobResume(APIView):
    @extend_schema(tags=TAG, summary="Resume a cancelled or failed AI judge job (managers)", request=None,
                   responses={200: OpenApiTypes.OBJECT, 409: inline_serializer("JudgeResumeConflict", {"detail": serializers.CharField()})})
    def post(self, request, pk: int):
        job = judge_job_get_for_user(user=request.user, job_id=pk, role=Role.MANAGER)
        if job.status not in (job.Status.CANCELLED, job.Status.FAILED):
            return Response({"detail": f"the job is {job.status}; only a cancelled or failed job resumes"}, status=status.HTTP_409_CONFLICT)
        return Response(judge_job_state(judge_job_resume(job=job)))


urlpatterns = [
    path("projects/<slug:slug>/judge-jobs/", JudgeJobs.as_view(), name="training-judge-jobs"),
    path("judge-jobs/<id:pk>/", JudgeJobDetail.as_view(), name="training-judge-job"),
    path("judge-jobs/<id:pk>/cancel/", JudgeJobCancel.as_view(), name="training-judge-job-cancel"),
    path("judge-jobs/<id:pk>/resume/", JudgeJobResume.as_view(), name="training-judge-job-resume"),
]
