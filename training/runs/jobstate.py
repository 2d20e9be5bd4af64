"""Where a job stands, for its page: the queue it waits in, its place in line, its phase, and an
estimate of the time left. One function for every kind of LongJob (training runs, judge jobs,
evaluations, generation batches, registrations), so every page says it the same way.

Read from the database, not the broker: the position is the number of queued rows of the same
queue (every kind whose task routes there, training/runs/lifecycle.queue_of) created earlier, plus
one. The estimate is elapsed / units done x units left, from the row's own counters.
No torch here: the web process imports this module."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.apps import apps
from django.db.models import Q
from django.utils import timezone

from training.runs.lifecycle import FINISHED, PHASES, LongJob, Status, queue_of


@dataclass(frozen=True)
class JobState:
    status: str
    queue: str
    position: int | None  # 1 = next in line; None unless queued
    phase: str  # a key of PHASES, "" when unknown or not running
    done: int
    total: int
    unit: str
    eta_seconds: int | None
    line: str  # what the page shows: "queued, 2nd in line on the jobs queue" / "training · 40 / 100 steps (40%) · about 3 min left"

    @property
    def percent(self) -> int:
        if self.status == Status.SUCCEEDED:
            return 100
        return min(100, round(100 * self.done / self.total)) if self.total else 0

    def as_dict(self) -> dict:
        return {"queue": self.queue, "position": self.position, "phase": self.phase, "eta_seconds": self.eta_seconds, "line": self.line}


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def duration(seconds: float) -> str:
    """Rounded for a person: "under a minute", "about 4 min", "about 1 h 20 min"."""
    minutes = round(seconds / 60)
    if minutes < 1:
        return "under a minute"
    if minutes < 60:
        return f"about {minutes} min"
    return f"about {minutes // 60} h {minutes % 60:02d} min"


def kinds_of_queue(queue: str) -> list[type[LongJob]]:
    """Every job model whose task is routed to `queue`."""
    return [m for m in apps.get_app_config("training").get_models()
            if issubclass(m, LongJob) and m.task_name and queue_of(m.task_name) == queue]


def queue_position(row: LongJob) -> int:
    """1 + the queued rows of the same queue created before this one (ties broken by id in one table)."""
    queue = queue_of(row.task_name)
    ahead = 0
    for model in kinds_of_queue(queue):
        earlier = Q(created_at__lt=row.created_at)
        if model is type(row):
            earlier |= Q(created_at=row.created_at, pk__lt=row.pk)
        ahead += model.objects.filter(earlier, status=Status.QUEUED).count()
    return ahead + 1


def job_state(row: LongJob, *, now: datetime | None = None) -> JobState:
    now = now or timezone.now()
    queue = queue_of(row.task_name)
    done = int(getattr(row, row.done_field, 0) or 0)
    total = int(getattr(row, row.total_field, 0) or 0)
    position, eta, phase = None, None, ""
    if row.status == Status.QUEUED:
        position = queue_position(row)
        place = "next in line" if position == 1 else f"{ordinal(position)} in line"
        line = f"queued, {place} on the {queue} queue"
        if row.cancel_requested:
            line = "cancelling"
    elif row.status == Status.RUNNING:
        phase = row.phase if row.phase in PHASES else ""
        parts = [PHASES.get(phase, "running")]
        if total:
            parts.append(f"{done} / {total} {row.unit} ({min(100, round(100 * done / total))}%)")
            if 0 < done < total and row.started_at:
                # elapsed / done x left: crude (loading counts as elapsed) but honest, and it
                # only ever shows once a unit is done.
                eta = round((now - row.started_at).total_seconds() / done * (total - done))
                parts.append(f"{duration(eta)} left")
        if row.cancel_requested:
            parts.append("stopping")
        line = " · ".join(parts)
    else:
        # Finished: the counter as it ended (the status badge beside it says how).
        pct = 100 if row.status == Status.SUCCEEDED else (min(100, round(100 * done / total)) if total else 0)
        line = f"{done} / {total} {row.unit} ({pct}%)" if total else str(row.status)
        if total and row.status in FINISHED and row.status != Status.SUCCEEDED:
            line = f"{row.status} at {line}"
    return JobState(status=row.status, queue=queue, position=position, phase=phase, done=done, total=total,
                    unit=row.unit, eta_seconds=eta, line=line)
