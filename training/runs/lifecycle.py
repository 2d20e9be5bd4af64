"""The lifecycle every long-running row of a worker shares: training runs (TrainingRun, `gpu`
queue), AI judge jobs (JudgeJob), evaluations and generation batches (Job) and model
registrations (RegistrationJob), all three on the `jobs` queue.

The row is the truth (DESIGN.md): a Celery message only wakes a worker, which claims the row
with a conditional UPDATE and a row count. The attempt number it wrote is a fencing token on
every later write, so a worker presumed dead cannot overwrite its successor. Progress writes
carry the heartbeat; cancel is a flag the worker reads; a `default` worker queues rows whose
heartbeat went stale again, or fails them once they have used up their attempts. The worker
records its `phase` (loading, training, evaluating, saving, ...) as it goes.

What differs stays with each kind: a run trains in a child process and writes a log
(training/runs/services.py, training/runs/runner.py); a judge's checkpoint is its stored judgments
(training/judge/); an evaluation or a generation batch starts over (training/loop/jobs.py).
No torch here: the web process imports this module.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from fnmatch import fnmatchcase

from django.conf import settings
from django.db import models, transaction
from django.db.models import F, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

log = logging.getLogger(__name__)


class LongJob(models.Model):
    """The fields of the lifecycle. A kind adds what it is about and its progress counters, its
    own Meta (ordering from here; the stale index under its own name) and may redeclare `result`
    to document what it holds."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    # What the worker is doing now (PHASES), written as it goes: a run at 4/4 steps may still be
    # evaluating for minutes, and the page must say so rather than look stuck at 100%.
    phase = models.CharField(max_length=16, blank=True)
    cancel_requested = models.BooleanField(default=False)
    worker = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    # The Celery task that works on a row of this kind: its route (settings.CELERY_TASK_ROUTES)
    # names the queue, which the queue position on the job pages counts in (training/runs/jobstate.py).
    task_name = ""
    # The counters of the progress bar, and what one unit is called on the page.
    done_field, total_field, unit = "done", "total", "items"

    class Meta:
        abstract = True
        ordering = ["-created_at"]

    @property
    def is_active(self) -> bool:
        """Queued or running: a page showing it refreshes itself."""
        return self.status in ACTIVE


Status = LongJob.Status
ACTIVE = (Status.QUEUED, Status.RUNNING)
FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)
LIFECYCLE_FIELDS = frozenset(f.name for f in LongJob._meta.fields)
# What `phase` may hold, with the words the pages show.
PHASES = {
    "loading": "loading", "training": "training", "evaluating": "evaluating", "generating": "generating answers",
    "judging": "judging", "converting": "converting", "saving": "saving",
}


class Lost(Exception):
    """Another worker holds the row now (this one was presumed dead), or the row is gone."""


class Cancelled(Exception):
    """The manager asked the job to stop."""


def max_attempts() -> int:
    """Claims one row gets in all; a row whose worker goes silent after the last one is failed."""
    return int(getattr(settings, "ARBITER_RUN_MAX_ATTEMPTS", 3))


def queue_of(task_name: str) -> str:
    """The queue settings.CELERY_TASK_ROUTES sends a task to, read the way Celery reads the map:
    an exact name first, then the glob patterns in order, else the default queue. One source of
    truth: the message goes there, and the page counts the rows ahead in that queue."""
    routes = settings.CELERY_TASK_ROUTES
    route = routes.get(task_name) or next((r for pattern, r in routes.items() if fnmatchcase(task_name, pattern)), None)
    return (route or {}).get("queue") or settings.CELERY_TASK_DEFAULT_QUEUE


def enqueue(task, row: LongJob) -> None:
    """Wake a worker of the task's queue once the row is committed (a worker must never see a row
    that isn't there). Training goes to `gpu`; judge, evaluation, generation and registration to
    `jobs`, so that a short job never waits behind a training run."""
    row_id, queue = row.pk, queue_of(task.name)
    transaction.on_commit(lambda: task.apply_async(args=[row_id], queue=queue))


def claim(model: type[LongJob], *, pk: int, worker_name: str) -> int | None:
    """Take the row: queued, or running with a stale heartbeat (its worker died). One conditional
    UPDATE and a row count: of two deliveries of the same message only one gets 1 back. Returns
    the attempt number (the fencing token), or None when there is nothing to do."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.ARBITER_RUN_STALE_SECONDS)
    claimable = Q(status=Status.QUEUED, cancel_requested=False) | Q(
        status=Status.RUNNING, heartbeat_at__lt=cutoff, attempts__lt=max_attempts(), cancel_requested=False
    )
    with transaction.atomic():
        won = model.objects.filter(claimable, pk=pk).update(
            status=Status.RUNNING,
            worker=worker_name[:200],
            attempts=F("attempts") + 1,
            heartbeat_at=now,
            started_at=Coalesce(F("started_at"), Value(now)),  # when it first started, across attempts
            error="",
            phase="loading",
        )
    if not won:
        return None
    return model.objects.values_list("attempts", flat=True).get(pk=pk)


def held(model: type[LongJob], *, pk: int, attempt: int, worker: str) -> QuerySet:
    """The row while this attempt of this worker holds it: every write of a worker goes through
    it, and an update that matches nothing means the row was lost."""
    return model.objects.filter(pk=pk, status=Status.RUNNING, attempts=attempt, worker=worker[:200])


def cancel(row: LongJob) -> LongJob:
    """A queued row is cancelled at once; a running one is asked to stop (its worker reads the
    flag with its next progress write). Finished rows are left alone."""
    rows = type(row).objects.filter(pk=row.pk)
    with transaction.atomic():
        if not rows.filter(status=Status.QUEUED).update(status=Status.CANCELLED, cancel_requested=True, finished_at=timezone.now()):
            rows.filter(status=Status.RUNNING).update(cancel_requested=True)
    row.refresh_from_db()
    return row


def recover_stale(
    model: type[LongJob],
    *,
    noun: str,
    requeue: Callable[[LongJob], None],
    resumes_from: Callable[[LongJob], str] = lambda row: "the start",
    notes: Callable[[LongJob, str], dict] = lambda row, line: {},
    now: datetime | None = None,
) -> list[int]:
    """Rows marked running whose worker stopped sending heartbeats: queued again (`requeue` wakes a
    worker) to resume from `resumes_from(row)`, or failed once they have used up their attempts; a
    row being cancelled is cancelled. `notes(row, line)` adds fields to each write (a run's log).
    Returns the ids queued again."""
    now = now or timezone.now()
    limit = settings.ARBITER_RUN_STALE_SECONDS
    cutoff = now - timedelta(seconds=limit)
    stale = model.objects.filter(status=Status.RUNNING).filter(Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff))
    requeued = []
    for row in stale:
        # Conditional on the heartbeat we read: a worker that comes back to life in between wins.
        same = model.objects.filter(pk=row.pk, status=Status.RUNNING, heartbeat_at=row.heartbeat_at)
        last = row.heartbeat_at or row.started_at
        ago = int((now - last).total_seconds()) if last else 0
        where = f"worker {row.worker or '?'}"
        if row.cancel_requested:
            same.update(status=Status.CANCELLED, finished_at=now, **notes(row, f"{where} went silent while cancelling; cancelled"))
        elif row.attempts >= max_attempts():
            reason = (
                f"{where} stopped sending heartbeats {ago} s ago (limit {limit} s) and the {noun} has used all "
                f"{row.attempts} attempts; it would have resumed from {resumes_from(row)}"
            )
            same.update(status=Status.FAILED, error=reason, finished_at=now, **notes(row, reason))
            log.warning("%s %s failed: %s", noun, row.pk, reason)
        else:
            line = f"{where} went silent {ago} s ago; queued again to resume from {resumes_from(row)}"
            with transaction.atomic():
                if same.update(status=Status.QUEUED, **notes(row, line)):
                    requeue(row)
                    requeued.append(row.pk)
                    log.warning("%s %s: %s", noun, row.pk, line)
    return requeued
