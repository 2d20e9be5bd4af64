"""A rater's progress on a project: done today, done in all, and what is left for them."""
from __future__ import annotations

from django.db.models import Sum
from django.utils import timezone

from annotation.models import Item, Judgment, Project


def rater_progress(*, project: Project, rater) -> dict:
    now = timezone.now()
    start_of_day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    mine = Judgment.objects.filter(project=project, rater=rater, source=Judgment.Source.HUMAN)
    done_total = mine.count()
    done_today = mine.filter(created_at__gte=start_of_day).count()
    # Open slots in the project, bounded by the items this rater has not done yet. An estimate
    # that never needs a scan joined against the rater's history.
    items = Item.objects.filter(project=project, is_gold=False)
    n_items = items.count()
    judged = items.aggregate(s=Sum("judgment_count"))["s"] or 0
    open_slots = max(0, n_items * project.overlap - judged)
    remaining = min(open_slots, max(0, n_items - done_total))
    return {"done_today": done_today, "done_total": done_total, "remaining": remaining}
