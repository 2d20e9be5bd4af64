"""The lifecycle of evaluation and generation jobs (training.job_models.Job), shared by both.

The row is the truth. `job_execute` is what the Celery task calls and is safe to call twice:
a conditional UPDATE claims a queued job (or a running one whose heartbeat went stale, i.e. its
worker died); a second delivery finds it claimed or finished and does nothing. Every later write
is fenced by the attempt number, so a worker presumed dead cannot overwrite its successor.
Progress writes are the heartbeat, and each one reads the cancel flag."""
from __future__ import annotations

import logging
import traceback
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from training.job_models import Job

log = logging.getLogger(__name__)
Status = Job.Status
MAX_ATTEMPTS = 3


class JobLost(Exception):
    pass


class JobCancelled(Exception):
    pass


def job_enqueue(*, job: Job) -> None:
    """Wake a gpu worker once the row is committed."""
    from training.tasks import run_job

    job_id = job.pk
    transaction.on_commit(lambda: run_job.apply_async(args=[job_id], queue="gpu"))


def job_cancel(*, job: Job) -> Job:
    """A queued job stops at once; a running one at its next progress write."""
    with transaction.atomic():
        Job.objects.filter(pk=job.pk, status=Status.QUEUED).update(
            status=Status.CANCELLED, cancel_requested=True, finished_at=timezone.now()
        )
        Job.objects.filter(pk=job.pk, status=Status.RUNNING).update(cancel_requested=True)
    job.refresh_from_db()
    return job


def job_claim(*, job_id: int, worker_name: str) -> int | None:
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.ARBITER_RUN_STALE_SECONDS)
    claimable = Q(status=Status.QUEUED, cancel_requested=False) | Q(
        status=Status.RUNNING, heartbeat_at__lt=cutoff, attempts__lt=MAX_ATTEMPTS, cancel_requested=False
    )
    won = Job.objects.filter(claimable, pk=job_id).update(
        status=Status.RUNNING, worker=worker_name[:200], attempts=F("attempts") + 1, heartbeat_at=now, started_at=now, error=""
    )
    if not won:
        return None
    return Job.objects.values_list("attempts", flat=True).get(pk=job_id)


class JobProgress:
    """Fenced writes to the job row; `step()` is also the heartbeat and the cancel check."""

    def __init__(self, job: Job, *, attempt: int, worker: str):
        self.job_id, self.attempt, self.worker = job.pk, attempt, worker

    def _mine(self):
        return Job.objects.filter(pk=self.job_id, status=Status.RUNNING, attempts=self.attempt, worker=self.worker)

    def write(self, **fields) -> None:
        fields.setdefault("heartbeat_at", timezone.now())
        if not self._mine().update(**fields):
            raise JobLost(f"job {self.job_id} is no longer held by {self.worker}")

    def step(self, *, done: int, total: int | None = None) -> None:
        self.write(done=done, **({"total": total} if total is not None else {}))
        if Job.objects.filter(pk=self.job_id, cancel_requested=True).exists():
            raise JobCancelled()


def job_execute(*, job_id: int, worker_name: str) -> str:
    """Entry point of the task: claim, run the job's kind, record the outcome."""
    if not connection.in_atomic_block:
        close_old_connections()
    attempt = job_claim(job_id=job_id, worker_name=worker_name)
    if attempt is None:
        return "skipped"
    job = Job.objects.select_related("policy", "policy__base_model", "project", "run").get(pk=job_id)
    progress = JobProgress(job, attempt=attempt, worker=worker_name)
    try:
        if job.kind == Job.Kind.EVALUATION:
            from training.evaluation import evaluation_execute

            result = evaluation_execute(job=job, progress=progress)
            extra = {}
        else:
            from training.batches import generation_batch_execute

            result, batch = generation_batch_execute(job=job, progress=progress)
            extra = {"import_batch": batch}
        progress.write(status=Status.SUCCEEDED, result=result, finished_at=timezone.now(), **extra)
        return "succeeded"
    except JobLost:
        return "lost"
    except JobCancelled:
        Job.objects.filter(pk=job_id, attempts=attempt).update(status=Status.CANCELLED, finished_at=timezone.now())
        return "cancelled"
    except Exception as exc:
        log.exception("job %s failed", job_id)
        detail = getattr(exc, "errors", None)
        message = f"{type(exc).__name__}: {exc}"
        if detail:
            message += "\n" + "\n".join(f"line {e['line']} {e['field']}: {e['message']}" for e in detail[:10])
        elif not isinstance(exc, ValueError):
            message += "\n" + "\n".join(traceback.format_exc().strip().splitlines()[-6:])
        Job.objects.filter(pk=job_id, attempts=attempt).update(status=Status.FAILED, error=message[:5000], finished_at=timezone.now())
        return "failed"
