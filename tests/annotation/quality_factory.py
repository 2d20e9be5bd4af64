"""Builders shared by the quality tests: judgments written straight to the database, with the
on-screen order, duration and time a real rater's judgment would carry."""
from __future__ import annotations

from datetime import datetime

from annotation.models import Judgment, Membership, Role


def join(project, user, role=Role.RATER) -> None:
    Membership.objects.get_or_create(project=project, user=user, defaults={"role": role})


def judge(project, item, rater, value: dict, *, order=None, duration_ms=None, when: datetime | None = None, gold_correct=None) -> Judgment:
    k = item.candidates.count()
    judgment = Judgment.objects.create(
        project=project,
        item=item,
        rater=rater,
        kind=project.kind,
        source=Judgment.Source.HUMAN,
        value=value,
        display_order=list(order) if order is not None else list(range(k)),
        duration_ms=duration_ms,
        gold_correct=gold_correct,
    )
    if when is not None:
        # created_at is auto_now_add: set the moment afterwards, as a backfill would.
        Judgment.objects.filter(id=judgment.id).update(created_at=when)
    return judgment
