"""Gold items: each rater's accuracy on hidden items with a known answer."""
from __future__ import annotations

from django.db.models import Count, Q

from annotation.models import Judgment, Membership, Project


def gold_accuracy(*, project: Project, rater) -> tuple[int, int]:
    """(correct, answered) on the project's gold items."""
    row = Judgment.objects.filter(project=project, rater=rater, gold_correct__isnull=False).aggregate(
        answered=Count("id"), correct=Count("id", filter=Q(gold_correct=True))
    )
    return row["correct"], row["answered"]


def gold_check_rater(*, project: Project, rater) -> bool:
    """Pause the rater when their gold accuracy is below the project's threshold.
    Returns whether the rater is paused now."""
    if project.gold_pause_threshold is None:
        return False
    correct, answered = gold_accuracy(project=project, rater=rater)
    if answered < project.gold_min_answers:
        return False
    accuracy = correct / answered
    if accuracy >= project.gold_pause_threshold:
        return False
    Membership.objects.filter(project=project, user=rater, paused=False).update(
        paused=True,
        paused_reason=f"gold accuracy {accuracy:.0%} on {answered} answers is below {project.gold_pause_threshold:.0%}",
    )
    return True
