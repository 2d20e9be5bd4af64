"""What the `jobs` worker runs for a registration: claim the row, register through the registry
(the same checks again: the roots may have changed since the request), record the outcome.
Safe to deliver twice: a second delivery finds the row claimed or finished."""
from __future__ import annotations

import logging

from django.db import close_old_connections, connection
from django.utils import timezone

from training.registration.models import RegistrationJob
from training.registry import services as registry
from training.runs import lifecycle

log = logging.getLogger(__name__)
Status = RegistrationJob.Status


def registration_execute(*, job_id: int, worker_name: str) -> str:
    if not connection.in_atomic_block:
        close_old_connections()
    attempt = lifecycle.claim(RegistrationJob, pk=job_id, worker_name=worker_name)
    if attempt is None:
        return "skipped"
    job = RegistrationJob.objects.get(pk=job_id)
    mine = lifecycle.held(RegistrationJob, pk=job_id, attempt=attempt, worker=worker_name)

    def write(**fields) -> bool:
        return bool(mine.update(heartbeat_at=timezone.now(), **fields))

    write(phase="converting" if job.source in ("gguf", "smollm2") else "saving")
    try:
        # In a child process for GGUF: the worker stays small, as the web process did before.
        artifact = registry.model_register(source=job.source, name=job.name, path=job.path, kind=job.kind or None)
    except registry.RegistryError as exc:
        return "failed" if write(status=Status.FAILED, error=str(exc)[:5000], finished_at=timezone.now()) else "lost"
    except Exception as exc:  # the page must say why, not stay "running"
        log.exception("registration %s failed", job_id)
        write(status=Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:5000], finished_at=timezone.now())
        return "failed"
    return "succeeded" if write(status=Status.SUCCEEDED, model=artifact, finished_at=timezone.now()) else "lost"
