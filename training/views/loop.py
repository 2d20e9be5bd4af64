"""Closing the loop from a policy's page: queue an evaluation, send a generation batch to
raters, watch a job, browse an evaluation's answers side by side. The work is in
training.loop.requests (shared with the API)."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from annotation.models import Role
from training.loop.generation import GenerationError
from training.loop.models import Job
from training.loop.jobs import job_cancel
from training.loop.requests import evaluation_request, generation_request, job_get_for_user, job_shown_to
from training.registry.selectors import model_get_for_user
from training.runs.jobstate import job_state


def _queue(request, pk: int, make, what: str):
    policy = model_get_for_user(user=request.user, model_id=pk)
    try:
        job = make(user=request.user, policy=policy, data=request.POST)
    except GenerationError as exc:
        messages.error(request, f"{what} not queued: {exc}")
        return redirect(reverse("training:model", args=[pk]) + "#loop")
    messages.success(request, f"{what} {job.pk} queued on the gpu worker")
    return redirect("training:job", pk=job.pk)


@login_required
@require_POST
def evaluation_new(request, pk: int):
    return _queue(request, pk, evaluation_request, "Evaluation")


@login_required
@require_POST
def generation_new(request, pk: int):
    return _queue(request, pk, generation_request, "Generation batch")


@login_required
def job_detail(request, pk: int):
    job = job_shown_to(user=request.user, job=job_get_for_user(user=request.user, job_id=pk))
    verdict = None
    if job.kind == Job.Kind.GENERATION and job.status == Job.Status.SUCCEEDED:
        from training.loop.batches import head_to_head

        names = [p["candidate_name"] for p in job.params.get("policies", [])]
        if len(names) >= 2:
            verdict = head_to_head(project=job.project, a=names[0], b=names[1])
    samples = (job.result or {}).get("samples", [])
    return render(request, "training/job_detail.html", {
        "job": job, "verdict": verdict, "samples": samples,
        "running": job.is_active,
        "state": job_state(job),
        "can_manage": _is_manager(request.user, job),
        "leaderboard_url": reverse("annotation:quality", kwargs={"slug": job.project.slug}) + "#leaderboard",
    })


def _is_manager(user, job) -> bool:
    from annotation.selectors import user_role

    return user.is_staff or user_role(user=user, project=job.project) == Role.MANAGER


@login_required
@require_POST
def job_cancel_view(request, pk: int):
    job = job_get_for_user(user=request.user, job_id=pk, role=Role.MANAGER)
    job_cancel(job=job)
    messages.info(request, f"{job} cancelled")
    return redirect("training:job", pk=pk)


urlpatterns = [
    path("models/<id:pk>/evaluate/", evaluation_new, name="model-evaluate"),
    path("models/<id:pk>/generate/", generation_new, name="model-generate"),
    path("jobs/<id:pk>/", job_detail, name="job"),
    path("jobs/<id:pk>/cancel/", job_cancel_view, name="job-cancel"),
]
