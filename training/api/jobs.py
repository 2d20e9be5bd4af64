"""Evaluations and generation batches over the API (training.loop.requests does the work).

    POST /api/training/models/<id>/evaluations/        {reward_model, prompts, reference?, limit?, temperature?, ...}
    POST /api/training/models/<id>/generation-batches/ {project, prompts, policies: [{model, k, temperature}], limit?, ...}
    GET  /api/training/models/<id>/jobs/               the model's jobs you may see
    GET  /api/training/jobs/<id>/                      status, progress, result (researchers of its project)
    POST /api/training/jobs/<id>/cancel/               managers of its project
"""
from __future__ import annotations

import re
from django.urls import path, reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.models import Role
from training.loop.generation import GenerationError
from training.loop.models import Job
from training.loop.jobs import job_cancel
from training.loop.requests import evaluation_request, generation_request, job_get_for_user, job_shown_to, jobs_for_policy
from training.registry.selectors import model_get_for_user


class JobSerializer(serializers.ModelSerializer):
    progress = serializers.FloatField(read_only=True)
    leaderboard_url = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = ["id", "kind", "policy", "project", "run", "params", "status", "cancel_requested", "attempts", "done", "total",
                  "progress", "heartbeat_at", "result", "error", "import_batch", "created_at", "started_at", "finished_at", "leaderboard_url"]

    def get_leaderboard_url(self, job) -> str | None:
        if job.kind != Job.Kind.GENERATION:
            return None
        return reverse("annotation:quality", kwargs={"slug": job.project.slug}) + "#leaderboard"


# A field name as the messages write it: "policies", "policies[0].k", "policies line 2", "limit".
FIELD_RE = re.compile(r"^[a-z_][a-z0-9_]*(\[\d+\])?(\.[a-z_]+| line \d+)?$")


def error_by_field(text: str) -> dict:
    """"field: message" -> {field: [message]}. A message without a field prefix goes under
    non_field_errors whole: it must never become a field name itself."""
    field, sep, message = text.partition(": ")
    if sep and FIELD_RE.match(field):
        return {field: [message]}
    return {"non_field_errors": [text]}


def _created(request, make, policy_id: int) -> Response:
    policy = model_get_for_user(user=request.user, model_id=policy_id)
    try:
        job = make(user=request.user, policy=policy, data=request.data)
    except GenerationError as exc:
        raise ValidationError(error_by_field(str(exc))) from None
    return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)


class EvaluationCreate(APIView):
    @extend_schema(summary="Queue an evaluation of this policy against a reference (managers of the prompts' project)",
                   request=None, responses={201: JobSerializer})
    def post(self, request, pk: int):
        return _created(request, evaluation_request, pk)


class GenerationCreate(APIView):
    @extend_schema(summary="Send a generation batch to a project's raters (managers of the target project)",
                   request=None, responses={201: JobSerializer})
    def post(self, request, pk: int):
        return _created(request, generation_request, pk)


class ModelJobs(APIView):
    @extend_schema(summary="Evaluations and generation batches of this model", responses={200: JobSerializer(many=True)})
    def get(self, request, pk: int):
        policy = model_get_for_user(user=request.user, model_id=pk)
        jobs = [job_shown_to(user=request.user, job=job) for job in jobs_for_policy(user=request.user, policy=policy)[:100]]
        return Response(JobSerializer(jobs, many=True).data)


class JobDetail(APIView):
    @extend_schema(summary="A job's state and result", responses={200: JobSerializer})
    def get(self, request, pk: int):
        return Response(JobSerializer(job_shown_to(user=request.user, job=job_get_for_user(user=request.user, job_id=pk))).data)


class JobCancel(APIView):
    @extend_schema(summary="Cancel a job (managers)", request=None, responses={200: JobSerializer})
    def post(self, request, pk: int):
        job = job_get_for_user(user=request.user, job_id=pk, role=Role.MANAGER)
        return Response(JobSerializer(job_shown_to(user=request.user, job=job_cancel(job=job))).data)


urlpatterns = [
    path("models/<id:pk>/evaluations/", EvaluationCreate.as_view(), name="training-model-evaluations"),
    path("models/<id:pk>/generation-batches/", GenerationCreate.as_view(), name="training-model-generation-batches"),
    path("models/<id:pk>/jobs/", ModelJobs.as_view(), name="training-model-jobs"),
    path("jobs/<id:pk>/", JobDetail.as_view(), name="training-job"),
    path("jobs/<id:pk>/cancel/", JobCancel.as_view(), name="training-job-cancel"),
]
