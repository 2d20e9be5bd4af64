"""Registration from the web process: check what can be checked without loading a model, then
queue the job (the conversion of a GGUF takes about a minute; a request must not wait for it)."""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from training.registration.models import RegistrationJob
from training.registry import services as registry
from training.registry.models import ModelArtifact
from training.runs import lifecycle

# The name each packaged source registers under, and the registry source it ends as.
PACKAGED = {"smollm2": registry.SMOLLM2_NAME, "minilm": registry.MINILM_NAME}
ENDS_AS = {"folder": ModelArtifact.Source.LOCAL, "minilm": ModelArtifact.Source.LOCAL,
           "gguf": ModelArtifact.Source.GGUF, "smollm2": ModelArtifact.Source.GGUF}


class RegistrationInProgress(registry.RegistryError):
    """A registration of the same name is queued or converting: the answer names it, not a folder."""

    def __init__(self, job: RegistrationJob):
        self.job = job
        started = timezone.localtime(job.started_at or job.created_at)
        verb = "is in progress, started" if job.status == RegistrationJob.Status.RUNNING else "is queued since"
        super().__init__(f"registration of {job.name} {verb} at {started:%H:%M:%S}; its page shows how far it got")


def silent_after() -> timedelta:
    """A registration writes no heartbeat while its child converts (up to ARBITER_GGUF_TIMEOUT),
    so it counts as dead only once that and the stale limit have both passed."""
    return timedelta(seconds=int(getattr(settings, "ARBITER_GGUF_TIMEOUT", 900)) + settings.ARBITER_RUN_STALE_SECONDS)


def registration_active(*, name: str) -> RegistrationJob | None:
    """The registration of `name` in progress, if any. One whose worker died is failed here, saying
    so: no periodic check watches registrations, and a dead one must not block the name forever."""
    now = timezone.now()
    RegistrationJob.objects.filter(name=name, status=RegistrationJob.Status.RUNNING, heartbeat_at__lt=now - silent_after()).update(
        status=RegistrationJob.Status.FAILED, finished_at=now,
        error="its worker stopped without finishing (killed or restarted); asked again, it starts over",
    )
    return RegistrationJob.objects.filter(name=name, status__in=lifecycle.ACTIVE).order_by("created_at").first()


def registration_start(*, source: str, name: str = "", path: str = "", kind: str | None = None,
                       created_by=None) -> RegistrationJob | ModelArtifact:
    """The model itself when it is registered already, else a queued RegistrationJob. Raises
    RegistryError with the same messages as `manage.py add_model` for a bad source, name or path
    (the path confined to ARBITER_MODEL_ROOTS), and RegistrationInProgress when the same name
    is being registered."""
    if source in PACKAGED:
        name, real = PACKAGED[source], ""
    elif source in registry.PATH_SOURCES:
        if not (path or "").strip():
            raise registry.RegistryError(f"path: a {'folder' if source == 'folder' else 'GGUF file'} path is required")
        name = registry.model_name_validate(name)  # a bad name is told before the path is looked at
        real = str(registry.model_path_under_roots(path, source=source))
        if source == "folder":
            registry.model_folder_check(real, kind or None)  # a bad folder is told now, not by the worker
    else:
        raise registry.RegistryError(f"source {source!r}: choose one of {', '.join(registry.SOURCES)}")
    existing = registry.model_find_registered(name=name, source=ENDS_AS[source])
    if existing is not None:
        return existing
    with transaction.atomic():
        running = registration_active(name=name)
        if running is not None:
            raise RegistrationInProgress(running)
        job = RegistrationJob.objects.create(name=name, source=source, path=real, kind=kind or "", created_by=created_by)
    # Sent once the row is committed (the block above; requests are not atomic), and not through
    # on_commit: a caller inside a transaction (a test, a shell) gets the task at once, which an
    # eager Celery runs inline, so the caller sees the outcome.
    from training.tasks import model_register

    model_register.apply_async(args=[job.pk], queue=lifecycle.queue_of(model_register.name))
    job.refresh_from_db()
    return job
