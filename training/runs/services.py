"""The run lifecycle seen from the web process: create, cancel, find stale runs.

No torch here: the web process and the `default` worker import this module. The GPU side of the
lifecycle (claim, train, heartbeat, finish) lives in training/runs/runner.py.
"""
from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from annotation.models import DatasetSnapshot, Project
from training.runs import lifecycle
from training.runs.compatibility import run_check_compatible
from training.registry.models import ModelArtifact
from training.runs.models import TrainingRun
from training.recipes import catalog
from training.recipes.base import ConfigError, config_schema, config_validate

__all__ = ["ConfigError", "run_create", "run_cancel", "runs_find_stale", "recipe_config_schema", "run_enqueue"]

MAX_PROCESSES = 64  # devices of one run: 8 nodes of 8 GPUs


def recipe_config_schema(method: str) -> list[dict]:
    """The method's hyperparameters for a form: name, type, default (None = auto), help, choices."""
    return config_schema(method)


def run_enqueue(*, run: TrainingRun) -> None:
    """Wake a GPU worker once the row is committed (a worker must never see a run that isn't there)."""
    from training.tasks import run_training

    lifecycle.enqueue(run_training, run)


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
    evaluate_after: bool = True,
) -> TrainingRun:
    """Validate, fill defaults, save a queued run and enqueue it on the `gpu` queue.
    Raises ConfigError (a ValueError) with a message naming the bad field, and PermissionDenied
    when `created_by` may not train on the snapshot (training.runs.selectors.snapshot_check_trainable)."""
    try:
        recipe = catalog.get(method)
    except KeyError as exc:
        raise ConfigError(f"method: {exc.args[0]}") from None
    values = config_validate(method, config)
    if created_by is not None:
        # One place for every way in (browser, API, admin): see training.runs.selectors.
        from training.runs.selectors import snapshot_check_trainable

        snapshot_check_trainable(user=created_by, snapshot=snapshot)
    if snapshot.project_id != project.pk and not snapshot.extra_projects.filter(pk=project.pk).exists():
        raise ConfigError(f"snapshot: {snapshot} is not a snapshot of project {project.slug}")
    if snapshot.status != DatasetSnapshot.Status.READY or not snapshot.path:
        raise ConfigError(f"snapshot: {snapshot} is not ready (status {snapshot.status})")
    if base_model.kind not in recipe.base_kinds:
        kind = base_model.get_kind_display().lower()
        kinds = " or ".join(ModelArtifact.Kind(k).label.lower() for k in recipe.base_kinds)
        raise ConfigError(f"base_model: a {method} run cannot start from {'an' if kind[0] in 'aeiou' else 'a'} {kind} "
                          f"({base_model.name}); choose a {kinds}")
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
    run_check_compatible(method=method, values=values, base_model=base_model, reward_model=reward_model, num_processes=num_processes,
                         snapshot=snapshot)
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
            evaluate_after=bool(evaluate_after),
        )
        run_enqueue(run=run)
    return run


def run_cancel(*, run: TrainingRun) -> TrainingRun:
    """A queued run is cancelled at once; a running one is asked to stop (the training callback
    sees the flag within a few steps and stops cleanly). Finished runs are left alone."""
    return lifecycle.cancel(run)


def runs_find_stale(*, now: datetime | None = None) -> list[int]:
    """Runs marked running whose worker stopped sending heartbeats: queue them again to resume
    from their last checkpoint, or mark them failed once they have used up their attempts; each
    outcome goes into the run's log. Returns the ids that were requeued."""
    return lifecycle.recover_stale(
        TrainingRun, noun="run", now=now,
        requeue=lambda run: run_enqueue(run=run),
        resumes_from=lambda run: run.checkpoint_path or "the start",
        notes=lambda run, line: {"log_tail": _tail(run.log_tail, line)},
    )


def _tail(text: str, line: str, keep: int = 60) -> str:
    lines = (text.splitlines() if text else []) + [f"{timezone.now():%H:%M:%S} {line}"]
    return "\n".join(lines[-keep:])
