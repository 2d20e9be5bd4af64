"""An online run's checkpoints from its page: register one as a model, send several to raters
(training/runs/checkpoints.py does the work; only managers of the run's project may do either)."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from annotation.models import Role
from training.runs.checkpoints import CheckpointError, checkpoint_register, checkpoints_request
from training.loop.generation import GenerationError
from training.runs.selectors import run_get_for_user


def _back(pk: int):
    return redirect(reverse("training:run", args=[pk]) + "#checkpoints")


@login_required
@require_POST
def checkpoints_to_raters_view(request, pk: int):
    run = run_get_for_user(user=request.user, run_id=pk, role=Role.MANAGER, action="sending checkpoints to raters")
    try:
        job = checkpoints_request(user=request.user, run=run, data=request.POST)
    except GenerationError as exc:  # CheckpointError included: the message names the field
        messages.error(request, f"Checkpoints not sent: {exc}")
        return _back(pk)
    messages.success(request, f"Generation batch {job.pk} queued: each checkpoint and the reference answer the same prompts")
    return redirect("training:job", pk=job.pk)


@login_required
@require_POST
def checkpoint_register_view(request, pk: int, step: int):
    run = run_get_for_user(user=request.user, run_id=pk, role=Role.MANAGER, action="registering a checkpoint")
    try:
        model = checkpoint_register(run=run, step=step, user=request.user)
    except CheckpointError as exc:
        messages.error(request, f"Checkpoint not registered: {exc}")
        return _back(pk)
    messages.success(request, f"Checkpoint {step} registered as {model.name}")
    return redirect("training:model", pk=model.pk)


urlpatterns = [
    path("runs/<id:pk>/checkpoints/raters/", checkpoints_to_raters_view, name="run-checkpoints-raters"),
    path("runs/<id:pk>/checkpoints/<int:step>/register/", checkpoint_register_view, name="run-checkpoint-register"),
]
