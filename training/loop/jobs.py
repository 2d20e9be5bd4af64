"""The lifecycle of evaluation and generation jobs (training.loop.models.Job), shared by both.

The row is the truth. `job_execute` is what the Celery task calls and is safe to call twice:
a conditional UPDATE claims a queued job (or a running one whose heartbeat went stale, i.e. its
worker died); a second delivery finds it claimed or finished and does nothing. Every later write
is fenced by the attempt number, so a worker presumed dead cannot overwrite its successor.
Progress writes are the heartbeat, and each one reads the cancel flag."""
from __future__ import annotations

import logging
import traceback
from datetime import datetime

from django.db import close_old_connections, connection
from django.utils import timezone

from training.runs import lifecycle
from training.loop.models import Job

log = logging.getLogger(__name__)
Status = Job.Status

JobLost = lifecycle.Lost
JobCancelled = lifecycle.Cancelled


def job_enqueue(*, job: Job) -> None:
    """Wake a `jobs` worker once the row is committed (never behind a training run)."""
    from training.tasks import run_job

    lifecycle.enqueue(run_job, job)


def job_cancel(*, job: Job) -> Job:
    """A queued job stops at once; a running one at its next progress write."""
    return lifecycle.cancel(job)


def jobs_find_stale(*, now: datetime | None = None) -> list[int]:
    """Running jobs whose worker went silent: queued again (they start over), or failed once
    they have used up their attempts. Returns the ids queued again."""
    return lifecycle.recover_stale(Job, noun="job", now=now, requeue=lambda job: job_enqueue(job=job))


class JobProgress:
    """Fenced writes to the job row; `step()` is also the heartbeat and the cancel check."""

    def __init__(self, job: Job, *, attempt: int, worker: str):
        self.job_id, self.attempt, self.worker = job.pk, attempt, worker
        # The phase shown once the models are loaded and the first step is done.
        self.phase = "evaluating" if job.kind == Job.Kind.EVALUATION else "generating"

    def _mine(self):
        return lifecycle.held(Job, pk=self.job_id, attempt=self.attempt, worker=self.worker)

    def write(self, **fields) -> None:
        fields.setdefault("heartbeat_at", timezone.now())
        if not self._mine().update(**fields):
            raise JobLost(f"job {self.job_id} is no longer held by {self.worker}")

    def step(self, *, done: int, total: int | None = None) -> None:
        self.write(done=done, phase=self.phase, **({"total": total} if total is not None else {}))
        if Job.objects.filter(pk=self.job_id, cancel_requested=True).exists():
            raise JobCancelled()


def job_execute(*, job_id: int, worker_name: str) -> str:
    """Entry point of the task: claim, run the job's kind, record the outcome."""
    if not connection.in_atomic_block:
        close_old_connections()
    attempt = lifecycle.claim(Job, pk=job_id, worker_name=worker_name)
    if attempt is None:
        return "skipped"
    job = Job.objects.select_related("policy", "policy__base_model", "project", "run").get(pk=job_id)
    progress = JobProgress(job, attempt=attempt, worker=worker_name)
    try:
        if job.kind == Job.Kind.EVALUATION:
            from training.loop.evaluation import evaluation_execute

            result = evaluation_execute(job=job, progress=progress)
            extra = {}
        else:
            from training.loop.batches import generation_batch_execute

            result, batch = generation_batch_execute(job=job, progress=progress)
            extra = {"import_batch": batch}
        progress.write(status=Status.SUCCEEDED, result=result, finished_at=timezone.now(), phase="", **extra)
        return "succeeded"
    except JobLost:
        return "lost"
    except JobCancelled:
        return _end(progress, Status.CANCELLED)
    except Exception as exc:
        log.exception("job %s failed", job_id)
        detail = getattr(exc, "errors", None)
        message = f"{type(exc).__name__}: {exc}"
        if detail:
            message += "\n" + "\n".join(f"line {e['line']} {e['field']}: {e['message']}" for e in detail[:10])
        elif not isinstance(exc, ValueError):
            message += "\n" + "\n".join(traceback.format_exc().strip().splitlines()[-6:])
        return _end(progress, Status.FAILED, error=message[:5000])


def _end(progress: JobProgress, status: str, **fields) -> str:
    """Record how the attempt ended, if it still holds the job."""
    try:
        progress.write(status=status, finished_at=timezone.now(), **fields)
    except JobLost:
        return "lost"
    return str(status)
