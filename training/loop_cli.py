"""Argument helpers shared by the evaluate_policy, generate_batch and demo_loop commands."""
from __future__ import annotations

from django.core.management.base import CommandError

from annotation.models import DatasetSnapshot, Project
from training.models import ModelArtifact


def model_named(name: str, option: str) -> ModelArtifact:
    model = ModelArtifact.objects.select_related("base_model").filter(name=name).first()
    if model is None:
        raise CommandError(f"{option}: no registered model {name!r} (see `manage.py add_model`)")
    return model


def prompts_arg(value: str) -> tuple[DatasetSnapshot | None, Project | None]:
    """'SLUG:vN' or 'SLUG:latest' -> that snapshot (its split); 'SLUG' -> the project's items."""
    slug, _, version = value.partition(":")
    project = Project.objects.filter(slug=slug).first()
    if project is None:
        raise CommandError(f"--prompts: no project {slug!r}")
    if not version:
        return None, project
    snapshots = DatasetSnapshot.objects.filter(project=project, status=DatasetSnapshot.Status.READY)
    if version == "latest":
        snapshot = snapshots.order_by("-version").first()
    else:
        snapshot = snapshots.filter(version=version.lstrip("v")).first() if version.lstrip("v").isdigit() else None
    if snapshot is None:
        raise CommandError(f"--prompts: project {slug} has no ready snapshot {version!r} (write SLUG:vN or SLUG:latest)")
    return snapshot, None


def job_run_here(job, stdout) -> None:
    """Run a queued job in this process (no worker needed) and report its outcome."""
    from training.jobs import job_execute

    outcome = job_execute(job_id=job.pk, worker_name="manage.py")
    job.refresh_from_db()
    if outcome != "succeeded":
        raise CommandError(f"{job} {job.status}: {job.error or outcome}")
