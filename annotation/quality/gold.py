"""Gold items: each rater's accuracy on hidden items with a known answer, and pausing.

A rater whose accuracy on at least `gold_min_answers` gold answers falls below the project's
`gold_pause_threshold` is paused (Membership.paused): annotation.assignment.lease_next gives
them no new items, and snapshots leave their judgments out (`paused_rater_ids`).

Pauses made by this check carry a reason starting with AUTO_REASON_PREFIX, so re-evaluating
after a threshold change may lift them; a pause a manager set by hand is never lifted
automatically. Unpausing starts a fresh gold window (Membership.gold_counted_from): older gold
answers no longer count toward pausing, so the rater is not re-paused on their next answer.
"""
from __future__ import annotations

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from annotation.models import Judgment, Membership, Project
from annotation.models.project import SETTING_BOUNDS

AUTO_REASON_PREFIX = "gold accuracy"


def gold_accuracy(*, project: Project, rater, since=None) -> tuple[int, int]:
    """(correct, answered) on the project's gold items, optionally only answers since a moment."""
    qs = Judgment.objects.filter(project=project, rater=rater, gold_correct__isnull=False)
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    row = qs.aggregate(answered=Count("id"), correct=Count("id", filter=Q(gold_correct=True)))
    return row["correct"], row["answered"]


def _below_threshold(*, project: Project, correct: int, answered: int) -> bool:
    if project.gold_pause_threshold is None or answered < project.gold_min_answers or answered == 0:
        return False
    return correct / answered < project.gold_pause_threshold


def _auto_reason(*, project: Project, correct: int, answered: int) -> str:
    return f"{AUTO_REASON_PREFIX} {correct / answered:.0%} on {answered} answers is below {project.gold_pause_threshold:.0%}"


def gold_check_rater(*, project: Project, rater) -> bool:
    """Pause the rater when their gold accuracy is below the project's threshold.
    Returns whether the rater is paused now."""
    membership = Membership.objects.filter(project=project, user=rater).first()
    if membership is None:
        return False
    if membership.paused:
        return True
    correct, answered = gold_accuracy(project=project, rater=rater, since=membership.gold_counted_from)
    if not _below_threshold(project=project, correct=correct, answered=answered):
        return False
    Membership.objects.filter(id=membership.id, paused=False).update(paused=True, paused_reason=_auto_reason(project=project, correct=correct, answered=answered))
    return True


def rater_pause(*, project: Project, rater, reason: str = "") -> Membership:
    """A manager pauses a rater by hand (never lifted by a threshold change)."""
    membership = Membership.objects.get(project=project, user=rater)
    membership.paused = True
    membership.paused_reason = (reason or "paused by a manager")[:200]
    if membership.paused_reason.startswith(AUTO_REASON_PREFIX):
        membership.paused_reason = f"manager: {membership.paused_reason}"[:200]
    membership.save(update_fields=["paused", "paused_reason"])
    return membership


def rater_unpause(*, project: Project, rater) -> Membership:
    """A manager lets a paused rater label again, with a fresh gold window."""
    membership = Membership.objects.get(project=project, user=rater)
    membership.paused = False
    membership.paused_reason = ""
    membership.gold_counted_from = timezone.now()
    membership.save(update_fields=["paused", "paused_reason", "gold_counted_from"])
    return membership


def gold_recheck_all(*, project: Project) -> dict[str, int]:
    """Re-evaluate every member against the project's current threshold: pause those below it,
    lift automatic pauses of those now at or above it. Returns {"paused": n, "unpaused": n}."""
    paused = unpaused = 0
    counted = (
        Judgment.objects.filter(project=project, gold_correct__isnull=False, rater__isnull=False)
        .values("rater_id")
        .annotate(answered=Count("id"), correct=Count("id", filter=Q(gold_correct=True)))
    )
    overall = {row["rater_id"]: (row["correct"], row["answered"]) for row in counted}
    with transaction.atomic():
        for membership in Membership.objects.select_for_update().filter(project=project):
            if membership.gold_counted_from is not None:
                correct, answered = gold_accuracy(project=project, rater=membership.user_id, since=membership.gold_counted_from)
            else:
                correct, answered = overall.get(membership.user_id, (0, 0))
            below = _below_threshold(project=project, correct=correct, answered=answered)
            if below and not membership.paused:
                membership.paused = True
                membership.paused_reason = _auto_reason(project=project, correct=correct, answered=answered)
                membership.save(update_fields=["paused", "paused_reason"])
                paused += 1
            elif not below and membership.paused and membership.paused_reason.startswith(AUTO_REASON_PREFIX):
                membership.paused = False
                membership.paused_reason = ""
                membership.save(update_fields=["paused", "paused_reason"])
                unpaused += 1
    return {"paused": paused, "unpaused": unpaused}


def gold_settings_set(*, project: Project, threshold: float | None, min_answers: int | None = None) -> dict[str, int]:
    """A manager changes the pause threshold (None: never pause); every rater is re-evaluated."""
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise ValueError("gold_pause_threshold: must be between 0 and 1")
    low, high = SETTING_BOUNDS["gold_min_answers"]
    if min_answers is not None and not low <= min_answers <= high:
        raise ValueError(f"gold_min_answers: must be between {low} and {high}")
    project.gold_pause_threshold = threshold
    fields = ["gold_pause_threshold"]
    if min_answers is not None:
        project.gold_min_answers = min_answers
        fields.append("gold_min_answers")
    project.save(update_fields=fields)
    return gold_recheck_all(project=project)


def paused_rater_ids(*, project: Project) -> set[int]:
    """Raters whose judgments snapshots leave out by default."""
    return set(Membership.objects.filter(project=project, paused=True).values_list("user_id", flat=True))
