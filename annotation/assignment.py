"""Leases: which item a rater gets next (DESIGN.md: Concurrency and state).

Rules: every item gets `overlap` judgments from distinct raters; a rater never sees an item
twice (unique (item, rater) on Assignment); items with fewer judgments and leases go first;
an expired lease returns its slot to the pool; two raters asking at the same instant never both
get the last slot of an item.

How: Item.taken counts judgments plus live leases. Claiming is a conditional UPDATE
(taken < overlap) whose row count says whether we won; candidates come from an index range
scan on (project, is_gold, taken, id), never a scan or COUNT of the whole table.
PostgreSQL also skips rows other claimers hold locked; SQLite serialises writers through
IMMEDIATE transactions instead.
"""
from __future__ import annotations

import random
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from annotation.models import Assignment, Candidate, Item, Membership, Project

CANDIDATE_WINDOW = 8
EXPIRE_BATCH = 200


class RaterPaused(Exception):
    """The rater is paused on this project (gold accuracy below the threshold, or by a manager)."""


def _active_lease(*, project: Project, rater, now) -> Assignment | None:
    return (
        Assignment.objects.filter(project=project, rater=rater, status=Assignment.Status.ACTIVE, expires_at__gt=now)
        .select_related("item")
        .order_by("created_at")
        .first()
    )


def leases_expire(*, project: Project, now=None) -> int:
    """Return expired leases' slots to the pool. Safe to run concurrently: each lease is
    flipped by a conditional UPDATE, and only the winner gives the slot back."""
    now = now or timezone.now()
    expired_ids = list(
        Assignment.objects.filter(project=project, status=Assignment.Status.ACTIVE, expires_at__lte=now)
        .values_list("id", "item_id")[:EXPIRE_BATCH]
    )
    released = 0
    for assignment_id, item_id in expired_ids:
        with transaction.atomic():
            won = Assignment.objects.filter(id=assignment_id, status=Assignment.Status.ACTIVE).update(
                status=Assignment.Status.EXPIRED, finished_at=now
            )
            if won:
                Item.objects.filter(id=item_id, taken__gt=0).update(taken=F("taken") - 1)
                released += 1
    return released


def _candidate_items(*, project: Project, rater, gold: bool):
    seen = Assignment.objects.filter(item=OuterRef("pk"), rater=rater)
    qs = Item.objects.filter(project=project, is_gold=gold).exclude(Exists(seen))
    if not gold:
        qs = qs.filter(taken__lt=project.overlap)
    qs = qs.order_by("taken", "id")
    if connection.features.has_select_for_update_skip_locked:
        qs = qs.select_for_update(skip_locked=True, of=("self",))
    return qs


def _try_claim(*, project: Project, rater, gold: bool, now) -> Assignment | None:
    with transaction.atomic():
        for item_id in _candidate_items(project=project, rater=rater, gold=gold).values_list("id", flat=True)[:CANDIDATE_WINDOW]:
            claim = Item.objects.filter(id=item_id)
            if not gold:
                claim = claim.filter(taken__lt=project.overlap)
            if not claim.update(taken=F("taken") + 1):
                continue  # somebody else took the last slot between our read and our write
            positions = list(Candidate.objects.filter(item_id=item_id).values_list("position", flat=True))
            random.shuffle(positions)
            try:
                with transaction.atomic():
                    return Assignment.objects.create(
                        project=project,
                        item_id=item_id,
                        rater=rater,
                        display_order=positions,
                        is_gold=gold,
                        expires_at=now + timedelta(seconds=project.lease_seconds),
                    )
            except IntegrityError:
                # The same rater claimed this item from another tab a moment ago: give the slot back.
                Item.objects.filter(id=item_id).update(taken=F("taken") - 1)
                continue
    return None


def lease_next(*, project: Project, rater, now=None) -> Assignment | None:
    """The rater's current lease, or a new one, or None when nothing is left for them."""
    now = now or timezone.now()
    membership = Membership.objects.filter(project=project, user=rater).first()
    if membership is not None and membership.paused:
        raise RaterPaused(membership.paused_reason or "paused by a manager")
    current = _active_lease(project=project, rater=rater, now=now)
    if current is not None:
        return current
    leases_expire(project=project, now=now)
    want_gold = project.gold_rate > 0 and random.random() < project.gold_rate
    assignment = None
    if want_gold:
        assignment = _try_claim(project=project, rater=rater, gold=True, now=now)
    if assignment is None:
        # Try twice: a window full of items that others claimed first is not "nothing left".
        for _ in range(2):
            assignment = _try_claim(project=project, rater=rater, gold=False, now=now)
            if assignment is not None:
                break
    return assignment


def assignment_skip(*, assignment: Assignment, rater) -> bool:
    """The rater passes on this item: it goes back to the pool for others, never to them."""
    if assignment.rater_id != rater.id:
        raise PermissionError("not your assignment")
    with transaction.atomic():
        won = Assignment.objects.filter(id=assignment.id, status=Assignment.Status.ACTIVE).update(
            status=Assignment.Status.SKIPPED, finished_at=timezone.now()
        )
        if won:
            Item.objects.filter(id=assignment.item_id, taken__gt=0).update(taken=F("taken") - 1)
    return bool(won)
