"""Writes of judgments: submit once, never lose an acknowledged one."""
from __future__ import annotations

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from annotation import kinds, questions, sql
from annotation.models import Assignment, Item, Judgment, Project
from annotation.submission import InvalidSubmission


class LeaseLost(Exception):
    """The lease expired and its slot went to another rater; the answer cannot be stored."""


def _existing(*, rater, assignment: Assignment, client_key: str) -> Judgment | None:
    """The rater's earlier answer to this item (a repeat), in one indexed query.

    A client key the rater already used for a *different* item is a client bug, not a repeat:
    answering with the other item's judgment would hide it, so it is refused by name.
    """
    same_item = Q(item_id=assignment.item_id, source=Judgment.Source.HUMAN)
    match = same_item | Q(client_key=client_key) if client_key else same_item
    found = list(Judgment.objects.filter(match, rater=rater)[:2])
    for judgment in found:
        if judgment.item_id == assignment.item_id:
            return judgment
    if found:
        raise InvalidSubmission({"client_key": "this key was already used for another judgment; send a new key per assignment"})
    return None


def _close_lease(*, assignment_id: int, now) -> int:
    """Flip an active lease to submitted; 1 when this call did it, 0 when it was not active."""
    with sql.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Assignment._meta.db_table} SET status = %s, finished_at = %s WHERE id = %s AND status = %s",
            [Assignment.Status.SUBMITTED.value, sql.prepared(Assignment, "finished_at", now), assignment_id, Assignment.Status.ACTIVE.value],
        )
        return cursor.rowcount


def _store_in_one_statement(*, assignment: Assignment, row: dict, now) -> Judgment | None:
    """PostgreSQL, the common case (a first answer to an active lease): close the lease,
    insert the judgment and count it on the item in one statement, atomic by itself, so
    the answer costs one round trip instead of five (BEGIN, three writes, COMMIT). None when
    the lease was not active: _store then sorts out a late answer or a repeat."""
    judgment, insert, params = sql.insert_select(Judgment, row)
    statement = (
        f"WITH closed AS (UPDATE {Assignment._meta.db_table} SET status = %s, finished_at = %s"
        "  WHERE id = %s AND status = %s RETURNING item_id),"
        f" counted AS (UPDATE {Item._meta.db_table} SET judgment_count = judgment_count + 1"
        "  WHERE id IN (SELECT item_id FROM closed))"
        f" {insert} FROM closed RETURNING id"
    )
    status = Assignment.Status
    with sql.own_transaction():
        with sql.cursor() as cursor:
            cursor.execute(statement, [status.SUBMITTED.value, sql.prepared(Assignment, "finished_at", now), assignment.id, status.ACTIVE.value, *params])
            found = cursor.fetchone()
    return None if found is None else sql.saved(judgment, found[0])


def _store(*, assignment: Assignment, project: Project, rater, row: dict, now) -> tuple[Judgment, bool]:
    """Close the lease (or take back the slot of an expired one), insert the judgment and count
    it, in one transaction. Returns (judgment, created); a repeat comes back with created False."""
    with transaction.atomic():
        won = _close_lease(assignment_id=assignment.id, now=now)
        if not won:
            # A late answer to an expired lease still counts if the slot is free again.
            late = Assignment.objects.filter(id=assignment.id, status=Assignment.Status.EXPIRED).update(
                status=Assignment.Status.SUBMITTED, finished_at=now
            )
            if not late:
                # A concurrent repeat (double click) may have answered it a moment ago.
                repeat = _existing(rater=rater, assignment=assignment, client_key=row["client_key"])
                if repeat is not None:
                    return repeat, False
                raise LeaseLost("this assignment is no longer open (skipped or already answered)")
            slot = Item.objects.filter(id=assignment.item_id)
            if not assignment.is_gold:
                slot = slot.filter(taken__lt=project.overlap)
            if not slot.update(taken=F("taken") + 1):
                raise LeaseLost("the lease expired and the item went to other raters")
        # Hand-written statements (annotation.sql): every answer runs them.
        judgment = sql.insert(Judgment, row)
        with sql.cursor() as cursor:
            cursor.execute(f"UPDATE {Item._meta.db_table} SET judgment_count = judgment_count + 1 WHERE id = %s", [assignment.item_id])
    return judgment, True


def judgment_submit(
    *,
    assignment: Assignment,
    rater,
    value: dict,
    answers: dict | None = None,
    duration_ms: int | None = None,
    rationale: str = "",
    flags: list[str] | None = None,
    client_key: str = "",
) -> tuple[Judgment, bool]:
    """Store the rater's answer to their assignment. Returns (judgment, created).

    Submitting twice (double click, a retry after a timeout) returns the first judgment and
    stores nothing new: the assignment's state (only the first submit flips it from active),
    the client key and the unique (item, rater) constraint each catch a repeat. The common
    case, a first answer to an active lease, costs three writes in one transaction (on
    PostgreSQL, in one statement).
    """
    if assignment.rater_id != rater.id:
        raise PermissionError("not your assignment")
    if assignment.status != Assignment.Status.ACTIVE:
        # Answered, skipped or expired as far as this copy knows: a repeat is answered
        # without validating or writing anything.
        existing = _existing(rater=rater, assignment=assignment, client_key=client_key)
        if existing is not None:
            return existing, False

    project: Project = assignment.project
    n_candidates = len(assignment.display_order) or assignment.item.candidates.count()
    clean = kinds.validate_value(project, value, n_candidates)
    clean_answers = questions.validate_answers(project, answers, n_candidates)
    gold_correct = None
    if assignment.is_gold and assignment.item.gold:
        gold_correct = kinds.gold_matches(project.kind, assignment.item.gold, clean, rating_threshold=project.rating_threshold)

    row = {
        "project": project,
        "item_id": assignment.item_id,
        "rater": rater,
        "assignment": assignment,
        "kind": project.kind,
        "source": Judgment.Source.HUMAN,
        "value": clean,
        "answers": clean_answers,
        "display_order": assignment.display_order,
        "duration_ms": duration_ms,
        "rationale": rationale or "",
        "flags": list(flags or []),
        "client_key": client_key or "",
        "gold_correct": gold_correct,
    }
    now = timezone.now()
    try:
        judgment = _store_in_one_statement(assignment=assignment, row=row, now=now) if connection.vendor == "postgresql" else None
        if judgment is None:
            judgment, created = _store(assignment=assignment, project=project, rater=rater, row=row, now=now)
            if not created:
                return judgment, False
    except IntegrityError:
        existing = _existing(rater=rater, assignment=assignment, client_key=client_key)
        if existing is None:
            raise
        return existing, False

    if gold_correct is not None:
        from annotation.quality.gold import gold_check_rater

        gold_check_rater(project=project, rater=rater)
    return judgment, True
