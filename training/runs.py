"""The run lifecycle seen from the web process: create, cancel, find stale runs.

No torch here: the web process and the `default` worker import this module. The GPU side of the
lifecycle (claim, train, heartbeat, finish) lives in training/runner.py.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from annotation.models import DatasetSnapshot, Project
from training.models import ModelArtifact, TrainingRun
from training.recipes import registry
from training.recipes.base import ConfigError, config_schema, config_validate

log = logging.getLogger(__name__)

__all__ = ["ConfigError", "run_create", "run_cancel", "runs_find_stale", "recipe_config_schema", "run_enqueue"]

MAX_PROCESSES = 64  # devices of one run: 8 nodes of 8 GPUs


def max_attempts() -> int:
    return int(getattr(settings, "ARBITER_RUN_MAX_ATTEMPTS", 3))


def recipe_config_schema(method: str) -> list[dict]:
    """The method's hyperparameters for a form: name, type, default (None = auto), help, choices."""
    return config_schema(method)


def run_enqueue(*, run: TrainingRun) -> None:
    """Wake a GPU worker once the row is committed (a worker must never see a run that isn't there)."""
    from training.tasks import run_training

    run_id = run.pk
    transaction.on_commit(lambda: run_training.apply_async(args=[run_id], queue="gpu"))


def run_create(
    *,
    project: Project,
    snapshot: DatasetSnapshot,
    base_model: ModelArtifact,
    method: str,
    use_lora: bool = True,
    config: dict | None = None,
    reward_model: ModelArtifact | None = None,
    created_by=None,
    num_processes: int = 1,
    distributed: str = TrainingRun.Distributed.DDP,
) -> TrainingRun:
    """Validate, fill defaults, save a queued run and enqueue it on the `gpu` queue.
    Raises ConfigError (a ValueError) with a message naming the bad field, and PermissionDenied
    when `created_by` may not train on the snapshot (training.selectors.snapshot_check_trainable)."""
    try:
        recipe = registry.get(method)
    except KeyError as exc:
        raise ConfigError(f"method: {exc.args[0]}") from None
    values = config_validate(method, config)
    if created_by is not None:
        # One place for every way in (browser, API, admin): see training.selectors.
        from training.selectors import snapshot_check_trainable

        snapshot_check_trainable(user=created_by, snapshot=snapshot)
    if snapshot.project_id != project.pk and not snapshot.extra_projects.filter(pk=project.pk).exists():
        raise ConfigError(f"snapshot: {snapshot} is not a snapshot of project {project.slug}")
    if snapshot.status != DatasetSnapshot.Status.READY or not snapshot.path:
        raise ConfigError(f"snapshot: {snapshot} is not ready (status {snapshot.status})")
    if base_model.kind not in recipe.base_kinds:
        raise ConfigError(f"base_model: a {method} run cannot start from a {base_model.get_kind_display().lower()} ({base_model.name})")
    if base_model.is_adapter:
        raise ConfigError(f"base_model: {base_model.name} is a LoRA adapter; start from its base model or a merged model")
    if recipe.needs_reward_model and reward_model is None:
        raise ConfigError(f"reward_model: a {method} run scores its rollouts with a reward model; choose one")
    if reward_model is not None and not recipe.needs_reward_model:
        reward_model = None  # a form may post one for every method; only the online ones use it
    if reward_model is not None and reward_model.kind != ModelArtifact.Kind.REWARD_MODEL:
        raise ConfigError(f"reward_model: {reward_model.name} is a {reward_model.get_kind_display().lower()}, not a reward model")
    if not isinstance(num_processes, int) or not 1 <= num_processes <= MAX_PROCESSES:
        raise ConfigError(f"num_processes: between 1 and {MAX_PROCESSES} (one per device), not {num_processes!r}")
    if distributed not in TrainingRun.Distributed.values:
        raise ConfigError(f"distributed: one of {', '.join(TrainingRun.Distributed.values)}, not {distributed!r}")
    with transaction.atomic():
        run = TrainingRun.objects.create(
            project=project,
            snapshot=snapshot,
            base_model=base_model,
            method=method,
            use_lora=use_lora,
            config=values,
            reward_model=reward_model,
            created_by=created_by,
            num_processes=num_processes,
            distributed=distributed,
        )
        run_enqueue(run=run)
    return run


def run_cancel(*, run: TrainingRun) -> TrainingRun:
    """A queued run is cancelled at once; a running one is asked to stop (the training callback
    sees the flag within a few steps and stops cleanly). Finished runs are left alone."""
    now = timezone.now()
    with transaction.atomic():
        done = TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.QUEUED).update(
            status=TrainingRun.Status.CANCELLED, cancel_requested=True, finished_at=now
        )
        if not done:
            TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.RUNNING).update(cancel_requested=True)
    run.refresh_from_db()
    return run


def runs_find_stale(*, now: datetime | None = None) -> list[int]:
    """Runs marked running whose worker stopped sending heartbeats: queue them again to resume
    from their last checkpoint, or mark them failed once they have used up their attempts.
    Returns the ids that were requeued."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.ARBITER_RUN_STALE_SECONDS)
    stale = TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    )
    requeued = []
    for run in stale:
        # Conditional on the heartbeat we read: a worker that comes back to life in between wins.
        same = TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.RUNNING, heartbeat_at=run.heartbeat_at)
        last = run.heartbeat_at or run.started_at
        ago = int((now - last).total_seconds()) if last else 0
        where = f"worker {run.worker or '?'}"
        if run.cancel_requested:
            same.update(status=TrainingRun.Status.CANCELLED, finished_at=now, log_tail=_tail(run.log_tail, f"{where} went silent while cancelling; cancelled"))
            continue
        if run.attempts >= max_attempts():
            reason = (
                f"{where} stopped sending heartbeats {ago} s ago (limit {settings.ARBITER_RUN_STALE_SECONDS} s) "
                f"and the run has used all {run.attempts} attempts; last checkpoint: {run.checkpoint_path or 'none'}"
            )
            same.update(status=TrainingRun.Status.FAILED, error=reason, finished_at=now, log_tail=_tail(run.log_tail, reason))
            log.warning("run %s failed: %s", run.pk, reason)
            continue
        line = f"{where} went silent {ago} s ago; queued again to resume from {run.checkpoint_path or 'the start'}"
        with transaction.atomic():
            if same.update(status=TrainingRun.Status.QUEUED, log_tail=_tail(run.log_tail, line)):
                run_enqueue(run=run)
                requeued.append(run.pk)
                log.warning("run %s: %s", run.pk, line)
    return requeued


def _tail(text: str, line: str, keep: int = 60) -> str:
    lines = (text.splitlines() if text else []) + [f"{timezone.now():%H:%M:%S} {line}"]
    return "\n".join(lines[-keep:])
