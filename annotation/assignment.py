"""Leases: which item a rater gets next (DESIGN.md: Concurrency and state).

Rules: every item gets `overlap` judgments from distinct raters; a rater never sees an item
twice (unique (item, rater) on Assignment); items with fewer judgments and leases go first;
an expired lease returns its slot to the pool; two raters asking at the same instant never both
get the last slot of an item.

How: Item.taken counts judgments plus live leases. Claiming is a conditional UPDATE
(taken < overlap) whose row count says whether we won; the candidate comes from an index range
scan on (project, is_gold, taken, priority, id) with LIMIT 1, never a scan or COUNT of the whole
table. Among items equally taken, the lowest priority goes first: 0 for all (oldest first), a
random number, or a reward model's uncertainty, by the project's setting (annotation/selection.py).
PostgreSQL skips rows other claimers hold locked (FOR NO KEY UPDATE SKIP LOCKED: the weaker
lock lets submits insert judgments that reference the row meanwhile), so fifty raters asking at
once each lock a different row instead of queueing on the first; SQLite serialises
writers through IMMEDIATE transactions instead (it has no row locks to skip).
"""
from __future__ import annotations

import json
import random
import time
from collections import Counter
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from annotation import sql
from annotation.models import Assignment, Candidate, Item, Membership, Project

EXPIRE_BATCH = 500
# How many times a claim retries after losing a race; each try takes the next free row.
CLAIM_ATTEMPTS = 8
# What a claim attempt returns when another claimer won the row it saw.
_LOST = object()

# Project id -> when this process last swept its expired leases. Sweeping on every request
# would add a query (and on SQLite a write lock) to the hot path; a lease that expired a few
# seconds ago can wait that long before it returns to the pool.
_last_sweep: dict[int, datetime] = {}


class RaterPaused(Exception):
    """The rater is paused on this project (gold accuracy below the threshold, or by a manager)."""


def _sweep_interval() -> float:
    return float(getattr(settings, "ARBITER_LEASE_SWEEP_SECONDS", 5))


def leases_expire(*, project: Project, now: datetime | None = None) -> int:
    """Return expired leases' slots to the pool; returns how many were released.

    Safe to run concurrently with itself, with submits and with claims: the expired leases are
    locked (PostgreSQL: skipping those another sweeper or a submit holds) and re-checked before
    they flip, and only the transaction that flips a lease gives its slot back.
    """
    now = now or timezone.now()
    with transaction.atomic():
        due = Assignment.objects.filter(project=project, status=Assignment.Status.ACTIVE, expires_at__lte=now).order_by("id")
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        rows = list(due.values_list("id", "item_id")[:EXPIRE_BATCH])
        if not rows:
            return 0
        released = Assignment.objects.filter(id__in=[r[0] for r in rows], status=Assignment.Status.ACTIVE).update(
            status=Assignment.Status.EXPIRED, finished_at=now
        )
        # One UPDATE per item, in id order: two sweepers never lock items in opposite orders.
        for item_id, n in sorted(Counter(r[1] for r in rows).items()):
            Item.objects.filter(id=item_id, taken__gte=n).update(taken=F("taken") - n)
    return released


def _maybe_sweep(*, project: Project, now: datetime) -> None:
    last = _last_sweep.get(project.id)
    # A clock that went backwards (tests passing `now`) counts as "due".
    if last is not None and timedelta(0) <= now - last < timedelta(seconds=_sweep_interval()):
        return
    _last_sweep[project.id] = now
    leases_expire(project=project, now=now)


def _next_item_query(*, project: Project, rater, gold: bool):
    """The rater's next candidate row, as a queryset that is an index range scan on
    item_next_idx (project, is_gold, taken, priority, id) with an anti-join probe per row into the unique
    (item, rater) index of Assignment."""
    seen = Assignment.objects.filter(item=OuterRef("pk"), rater=rater)
    qs = Item.objects.filter(project=project, is_gold=gold).exclude(Exists(seen))
    if not gold:
        qs = qs.filter(taken__lt=project.overlap)
    return qs.order_by("taken", "priority", "id")


# Gold items are shown to every rater: their slot counter has no ceiling.
_NO_CEILING = 2**31 - 1


def _claim_sql(*, project: Project, rater, gold: bool, skip_locked: bool, unless: tuple[str, list] = ("", [])) -> tuple[str, list]:
    """Take a slot on the rater's next item in one statement: the inner SELECT is
    _next_item_query's index range scan (LIMIT 1, PostgreSQL: skipping rows other claimers
    hold), the outer UPDATE re-checks the ceiling and returns the row. `unless` is an extra
    condition for the UPDATE (SQL starting with AND, and its parameters). Raw SQL because
    this is the hottest statement of the app, and building it through the ORM cost more CPU
    than running it."""
    item, assignment = Item._meta.db_table, Assignment._meta.db_table
    lock = " FOR NO KEY UPDATE SKIP LOCKED" if skip_locked else ""
    ceiling = _NO_CEILING if gold else project.overlap
    statement = (
        f"UPDATE {item} SET taken = taken + 1 WHERE id = ("
        f"SELECT i.id FROM {item} i WHERE i.project_id = %s AND i.is_gold = %s AND i.taken < %s"
        f" AND NOT EXISTS (SELECT 1 FROM {assignment} a WHERE a.item_id = i.id AND a.rater_id = %s)"
        f" ORDER BY i.taken, i.priority, i.id LIMIT 1{lock}) AND taken < %s{unless[0]}"
        " RETURNING id, external_id, prompt"
    )
    return statement, [project.id, gold, ceiling, rater.id, ceiling, *unless[1]]


def _open_lease_sql(*, project: Project, rater, now: datetime) -> tuple[str, list]:
    """The rater's open lease on this project (SELECT id), if any: asked on every `next` and
    usually answered "none"; an index range scan on assignment_rater_idx."""
    return (
        f"SELECT id FROM {Assignment._meta.db_table} WHERE project_id = %s AND rater_id = %s AND status = %s"
        " AND expires_at > %s ORDER BY id LIMIT 1",
        [project.id, rater.id, Assignment.Status.ACTIVE.value, sql.prepared(Assignment, "expires_at", now)],
    )


def _open_lease(*, project: Project, rater, now: datetime) -> Assignment | None:
    """SQLite, inside the claim's IMMEDIATE transaction (which already serialises two tabs of
    one rater asking at once): the rater's open lease, if any."""
    find, params = _open_lease_sql(project=project, rater=rater, now=now)
    with connection.cursor() as cursor:
        cursor.execute(find, params)
        row = cursor.fetchone()
    return None if row is None else Assignment.objects.select_related("item").get(id=row[0])


def _lease_values(*, project: Project, item: Item | None, rater, gold: bool, now: datetime, order: list[int]) -> dict:
    return {
        "project": project,
        "item": item,
        "rater": rater,
        "display_order": order,
        "is_gold": gold,
        "expires_at": now + timedelta(seconds=project.lease_seconds),
    }


def _item(*, project: Project, gold: bool, row) -> Item:
    item_id, external_id, prompt = row
    prompt = Item._meta.get_field("prompt").from_db_value(prompt, None, connection)
    return Item.from_db(connection.alias, ["id", "project_id", "external_id", "prompt", "is_gold"], (item_id, project.id, external_id, prompt, gold))


def _candidate(item_id: int, candidate_id: int, position: int, text: str) -> Candidate:
    return Candidate.from_db(connection.alias, ["id", "item_id", "position", "text"], (candidate_id, item_id, position, text))


def _json(value):
    # psycopg hands json back parsed and Django's jsonb back as text: accept both.
    return json.loads(value) if isinstance(value, str) else value


def _try_claim_postgres(*, project: Project, rater, membership: Membership | None, gold: bool, now: datetime, rng: random.Random):
    """_try_claim on PostgreSQL, in one round trip and one transaction (the implicit one of a
    multi-statement query, or a savepoint inside a caller's transaction):

    1. `synchronous_commit` off for this transaction: a lease is soft state; should the server
       crash in the next few hundred ms, losing it loses nothing (the rater asks again; slot
       and lease go together). Not waiting for the WAL flush halves a judgment's fsyncs.
    2. Lock the rater's membership row: two tabs of one rater asking at once queue there and
       end with one lease, not two (other raters never wait on it). Each later statement
       starts after the lock, so it sees what the other tab committed.
    3. The rater's open lease, if any: asking again is not a new claim.
    4. Unless step 3 found one: take the slot, insert the lease with its on-screen order and
       read the candidates. The order is the candidates sorted by a hash of their position and
       a salt drawn from `rng`: a fresh random permutation per lease, reproducible in tests.
    """
    find, find_params = _open_lease_sql(project=project, rater=rater, now=now)
    claim, params = _claim_sql(project=project, rater=rater, gold=gold, skip_locked=True, unless=(f" AND NOT EXISTS ({find})", find_params))
    candidates = Candidate._meta.db_table
    salt = f"{rng.getrandbits(64):x}"
    order = (
        f"(SELECT coalesce(jsonb_agg(c.position ORDER BY md5(c.position::text || %s)), '[]'::jsonb)"
        f" FROM {candidates} c WHERE c.item_id = claimed.id)"
    )
    assignment, insert, insert_params = sql.insert_select(
        Assignment,
        # item and order come from the statement itself (expressions below)
        _lease_values(project=project, item=None, rater=rater, gold=gold, now=now, order=[]),
        expressions={"item_id": ("claimed.id", []), "display_order": (order, [salt])},
    )
    lock, lock_params = "", []
    if membership is not None and membership.pk is not None:
        lock, lock_params = f"SELECT id FROM {Membership._meta.db_table} WHERE id = %s FOR UPDATE; ", [membership.pk]
    statement = (
        f"SET LOCAL synchronous_commit TO OFF; {lock}{find};"
        f" WITH claimed AS ({claim}), lease AS ({insert} FROM claimed RETURNING id, display_order)"
        " SELECT claimed.id, claimed.external_id, claimed.prompt, lease.id, lease.display_order,"
        f" (SELECT json_agg(json_build_array(c.id, c.position, c.text) ORDER BY c.position) FROM {candidates} c"
        "  WHERE c.item_id = claimed.id)"
        " FROM claimed, lease"
    )
    try:
        # One implicit transaction, no BEGIN and COMMIT round trips. Django's cursor, not
        # sql.cursor(): several statements in one query need client-side binding.
        with sql.own_transaction():
            with connection.cursor() as cursor:
                cursor.execute(statement, [*lock_params, *find_params, *params, *insert_params])
                cursor.nextset()  # past SET
                if lock:
                    cursor.nextset()
                current = cursor.fetchone()
                cursor.nextset()
                row = cursor.fetchone()
    except IntegrityError:
        # The rater already has a row for this item (a race the lock should prevent); the
        # whole attempt rolled back, slot included: try the next row.
        return _LOST
    if current is not None:
        return Assignment.objects.select_related("item").get(id=current[0])
    if row is None:
        return None
    item = _item(project=project, gold=gold, row=row[:3])
    assignment.item = item
    assignment.display_order = _json(row[4])
    assignment._candidates = [_candidate(item.id, *found) for found in _json(row[5]) or []]
    return sql.saved(assignment, row[3])


def _try_claim(*, project: Project, rater, membership: Membership | None, gold: bool, now: datetime, rng: random.Random):
    """One attempt, one short transaction: return the rater's open lease if they have one;
    otherwise take a slot on the first free row and create the lease. Returns the lease, None
    when no row is free, or _LOST when another claimer won the race for the row we saw."""
    if connection.vendor == "postgresql":
        return _try_claim_postgres(project=project, rater=rater, membership=membership, gold=gold, now=now, rng=rng)
    if not connection.features.can_return_columns_from_insert:
        return _try_claim_orm(project=project, rater=rater, gold=gold, now=now, rng=rng)
    # SQLite: its IMMEDIATE transaction serialises claimers; three statements.
    try:
        with transaction.atomic():
            current = _open_lease(project=project, rater=rater, now=now)
            if current is not None:
                return current
            claim, params = _claim_sql(project=project, rater=rater, gold=gold, skip_locked=False)
            with connection.cursor() as cursor:
                cursor.execute(claim, params)
                row = cursor.fetchone()
                if row is None:
                    return None
                item_id, external_id, prompt = row
                cursor.execute(
                    f"SELECT id, position, text FROM {Candidate._meta.db_table} WHERE item_id = %s ORDER BY position", [item_id]
                )
                candidates = [_candidate(item_id, *found) for found in cursor.fetchall()]
            item = _item(project=project, gold=gold, row=row)
            positions = [c.position for c in candidates]
            rng.shuffle(positions)
            assignment = sql.insert(Assignment, _lease_values(project=project, item=item, rater=rater, gold=gold, now=now, order=positions))
            assignment._candidates = candidates  # saves the API a query; see assignment_candidates
            return assignment
    except IntegrityError:
        # The rater already has a row for this item (a race the locks above should prevent);
        # the whole attempt rolled back, slot included: try the next row.
        return _LOST


def _try_claim_orm(*, project: Project, rater, gold: bool, now: datetime, rng: random.Random):
    """_try_claim for SQLite older than 3.35 (no RETURNING): the same steps through the ORM."""
    try:
        with transaction.atomic():
            current = _open_lease(project=project, rater=rater, now=now)
            if current is not None:
                return current
            item = _next_item_query(project=project, rater=rater, gold=gold).first()
            if item is None:
                return None
            if not Item.objects.filter(id=item.id, taken__lt=_NO_CEILING if gold else project.overlap).update(taken=F("taken") + 1):
                return _LOST
            candidates = list(Candidate.objects.filter(item_id=item.id).only("item_id", "position", "text").order_by("position"))
            positions = [c.position for c in candidates]
            rng.shuffle(positions)
            assignment = Assignment.objects.create(
                project=project, item=item, rater=rater, display_order=positions, is_gold=gold,
                expires_at=now + timedelta(seconds=project.lease_seconds),
            )
            assignment._candidates = candidates
            return assignment
    except IntegrityError:
        return _LOST


def _claim(*, project: Project, rater, membership: Membership | None, gold: bool, now: datetime, rng: random.Random) -> Assignment | None:
    skip_locked = connection.features.has_select_for_update_skip_locked
    for attempt in range(CLAIM_ATTEMPTS):
        result = _try_claim(project=project, rater=rater, membership=membership, gold=gold, now=now, rng=rng)
        if result is _LOST:
            continue
        if result is None and skip_locked and _next_item_query(project=project, rater=rater, gold=gold).exists():
            # Every free row is locked by claimers in flight, and some may keep a slot once
            # they commit. Claims last milliseconds: look again shortly rather than tell this
            # rater "nothing left" while slots remain. (Waiting on the row locks instead can
            # deadlock: a blocked FOR UPDATE keeps the rows it locked and then rejected.)
            time.sleep(0.002 * (attempt + 1))
            continue
        return result
    return None


def lease_next(
    *,
    project: Project,
    rater,
    now: datetime | None = None,
    membership: Membership | None = None,
    rng: random.Random | None = None,
) -> Assignment | None:
    """The rater's current lease, or a new one, or None when nothing is left for them.

    Raises RaterPaused for a paused rater. `membership` (the caller's, from
    selectors.project_get_for_user) saves a query; `rng` makes gold mixing and on-screen order reproducible in tests.
    """
    now = now or timezone.now()
    rng = rng or random
    if membership is None:
        membership = Membership.objects.filter(project=project, user=rater).first()
    if membership is not None and membership.paused:
        raise RaterPaused(membership.paused_reason or "paused by a manager")
    if project.prompt_set:
        return None  # prompts for online RL: nothing to judge (its items may have no candidates)
    _maybe_sweep(project=project, now=now)
    # Each claim first returns the rater's open lease, if any: asking again is not a new claim.
    assignment = None
    if project.gold_rate > 0 and rng.random() < project.gold_rate:
        assignment = _claim(project=project, rater=rater, membership=membership, gold=True, now=now, rng=rng)
    if assignment is None:
        assignment = _claim(project=project, rater=rater, membership=membership, gold=False, now=now, rng=rng)
    if assignment is None:
        # The end of the queue: what the rater skipped comes back to them, oldest skip first.
        # Only here, never on the common path, so a rater with work left pays nothing for it.
        assignment = _reclaim_skipped(project=project, rater=rater, membership=membership, now=now)
    # No gold-only fallback when the regular items run out: a queue of nothing but gold items
    # would tell the rater which items are gold.
    return assignment


def _reclaim_skipped(*, project: Project, rater, membership: Membership | None, now: datetime) -> Assignment | None:
    """Reopen the rater's oldest skipped lease whose item still has a free slot (the lease row
    is reused: (item, rater) is unique). One transaction; the rater's membership row is locked
    first, as in the claim, so two tabs asking at once reopen one lease, not two."""
    # Expired leases too: the rater held the item and let it go, as good as a skip.
    skipped = Assignment.objects.filter(project=project, rater=rater, status__in=[Assignment.Status.SKIPPED, Assignment.Status.EXPIRED]).order_by("finished_at", "id")
    with transaction.atomic():
        if membership is not None and membership.pk is not None and connection.features.has_select_for_update:
            list(Membership.objects.select_for_update().filter(id=membership.pk).values_list("id"))
        current = _open_lease(project=project, rater=rater, now=now)
        if current is not None:
            return current
        for lease_id, item_id, gold in skipped.values_list("id", "item_id", "is_gold")[:50]:
            slot = Item.objects.filter(id=item_id)
            if not gold:
                slot = slot.filter(taken__lt=project.overlap)
            if not slot.update(taken=F("taken") + 1):
                continue  # the item went to other raters meanwhile
            reopened = Assignment.objects.filter(id=lease_id, status__in=[Assignment.Status.SKIPPED, Assignment.Status.EXPIRED]).update(
                status=Assignment.Status.ACTIVE, expires_at=now + timedelta(seconds=project.lease_seconds), finished_at=None
            )
            if reopened:
                return Assignment.objects.select_related("item").get(id=lease_id)
            Item.objects.filter(id=item_id, taken__gt=0).update(taken=F("taken") - 1)
    return None


def assignment_skip(*, assignment: Assignment, rater) -> bool:
    """The rater passes on this item: it goes back to the pool for others, and back to them at
    the end of their queue (lease_next reopens their Assignment row, since (item, rater) is
    unique). Returns False when the lease was no longer active (answered, skipped or expired)."""
    if assignment.rater_id != rater.id:
        raise PermissionError("not your assignment")
    with transaction.atomic():
        won = Assignment.objects.filter(id=assignment.id, status=Assignment.Status.ACTIVE).update(
            status=Assignment.Status.SKIPPED, finished_at=timezone.now()
        )
        if won:
            Item.objects.filter(id=assignment.item_id, taken__gt=0).update(taken=F("taken") - 1)
    if won:
        assignment.status = Assignment.Status.SKIPPED
    return bool(won)


def assignment_candidates(assignment: Assignment) -> list[Candidate]:
    """The item's candidates in on-screen order (assignment.display_order)."""
    candidates = getattr(assignment, "_candidates", None)
    if candidates is None:
        candidates = list(Candidate.objects.filter(item_id=assignment.item_id).only("item_id", "position", "text"))
    by_position = {c.position: c for c in candidates}
    order = assignment.display_order or sorted(by_position)
    return [by_position[p] for p in order if p in by_position]


def sweep_clock_reset() -> None:
    """Forget when projects were last swept (tests that move the clock use it)."""
    _last_sweep.clear()


__all__ = ["RaterPaused", "assignment_candidates", "assignment_skip", "lease_next", "leases_expire", "sweep_clock_reset"]
