"""A rater's progress on a project: done today, done in all, and what is left for them.

The rater's own numbers are index range scans over their judgments (judgment_rater_idx), so
they cost what the rater has done, not what the project holds. What is left needs the
project's item count and judgment total; those are exact for projects up to EXACT_LIMIT
items, and above that come from a per-process cache refreshed every PROJECT_TOTALS_TTL
seconds, so a million-item project never pays a COUNT over its whole table per request.
"""
from __future__ import annotations

import time

from django.db.models import Count, Q, Sum
from django.utils import timezone

from annotation.models import Item, Judgment, Project

EXACT_LIMIT = 5_000
PROJECT_TOTALS_TTL = 30.0

# project id -> (monotonic time, n_items, judgments stored on them)
_totals_cache: dict[int, tuple[float, int, int]] = {}


def _project_totals(project: Project) -> tuple[int, int]:
    """(regular items, human judgments on them)."""
    items = Item.objects.filter(project=project, is_gold=False)
    # A bounded count: reads at most EXACT_LIMIT + 1 index entries, whatever the project's size.
    bounded = items.order_by()[: EXACT_LIMIT + 1].count()
    if bounded <= EXACT_LIMIT:
        return bounded, items.aggregate(s=Sum("judgment_count"))["s"] or 0
    cached = _totals_cache.get(project.id)
    if cached is not None and time.monotonic() - cached[0] < PROJECT_TOTALS_TTL:
        return cached[1], cached[2]
    row = items.aggregate(n=Count("id"), s=Sum("judgment_count"))
    totals = (row["n"] or 0, row["s"] or 0)
    _totals_cache[project.id] = (time.monotonic(), *totals)
    return totals


def rater_progress(*, project: Project, rater) -> dict:
    """{"done_today", "done_total", "remaining"} for the rater on this project.

    `remaining` is how many more items this rater could still label: the project's open slots
    (items x overlap - judgments), bounded by the items this rater has not judged yet. Leases
    held by others are not subtracted; they come back when they expire.
    """
    now = timezone.localtime(timezone.now())
    start_of_day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    mine = Judgment.objects.filter(rater=rater, project=project, source=Judgment.Source.HUMAN).aggregate(
        total=Count("id"),
        today=Count("id", filter=Q(created_at__gte=start_of_day)),
        regular=Count("id", filter=Q(item__is_gold=False)),
    )
    done_total, done_today, mine_regular = mine["total"], mine["today"], mine["regular"]
    n_items, judged = _project_totals(project)
    open_slots = max(0, n_items * project.overlap - judged)
    remaining = min(open_slots, max(0, n_items - mine_regular))
    return {"done_today": done_today, "done_total": done_total, "remaining": remaining}
