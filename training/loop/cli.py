"""Argument helpers shared by the evaluate_policy, generate_batch and demo_loop commands."""
from __future__ import annotations

from django.core.management.base import CommandError

from annotation.models import DatasetSnapshot, Project
from training.registry.models import ModelArtifact


def model_named(name: str, option: str) -> ModelArtifact:
    model = ModelArtifact.objects.select_related("base_model").filter(name=name).first()
    if model is None:
        raise CommandError(f"{option}: no registered model {name!r} (see `manage.py add_model`)")
    return model


def prompts_arg(value: str) -> tuple[DatasetSnapshot | None, Project | None]:
    from training.loop.generation import GenerationError
    from training.loop.prompt_sources import prompts_parse

    try:
        return prompts_parse(value)
    except GenerationError as exc:
        raise CommandError(f"--{exc}") from None


def job_run_here(job, stdout) -> None:
    """Run a queued job in this process (no worker needed) and report its outcome."""
    from training.loop.jobs import job_execute

    # With eager Celery (demo_loop) the job already ran when it was queued; then this finds it done.
    outcome = job_execute(job_id=job.pk, worker_name="manage.py")
    job.refresh_from_db()
    if job.status != job.Status.SUCCEEDED:
        raise CommandError(f"{job} {job.status}: {job.error or outcome}")
