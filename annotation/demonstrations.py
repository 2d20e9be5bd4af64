"""Demonstrations, the SFT data of RLHF: a rater writes a response of their own, or rewrites a
candidate (usually the one they judged best) into a better one.

Where the project allows it (Project.demonstrations), a demonstration goes with the rater's
lease: alongside their judgment (before or after it), or, where the project says "instead",
in place of it: then the lease closes without a judgment and its slot goes back to the pool,
so the item still gets its judgments from others. A rewrite keeps the position and the text of
the candidate it came from; snapshots export it as an sft row and the pair rewrite > original.
"""
from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from annotation.kinds import InvalidValue
from annotation.models import Assignment, Candidate, Demonstration, Item, Project

MAX_DEMONSTRATION = 50_000


class DemonstrationsOff(Exception):
    """The project does not take demonstrations (or not in place of a judgment)."""


def demonstration_save(*, assignment: Assignment, rater, text: str, source_position: int | None = None, finish: bool = False) -> Demonstration:
    """Store (or replace) the rater's demonstration for the item of their lease.

    `finish` (projects that take a demonstration instead of a judgment): close the lease with
    this demonstration as the rater's whole answer."""
    if assignment.rater_id != rater.id:
        raise PermissionError("not your assignment")
    project: Project = assignment.project
    if project.demonstrations == Project.Demonstrations.OFF:
        raise DemonstrationsOff(f"{project.name} does not take written responses")
    if finish and project.demonstrations != Project.Demonstrations.INSTEAD:
        raise DemonstrationsOff(f"{project.name} takes a written response only alongside a judgment")
    if not isinstance(text, str) or not text.strip():
        raise InvalidValue("text", "write a response first")
    if len(text) > MAX_DEMONSTRATION:
        raise InvalidValue("text", f"must be at most {MAX_DEMONSTRATION} characters")
    if assignment.status not in (Assignment.Status.ACTIVE, Assignment.Status.SUBMITTED):
        raise InvalidValue("assignment", "this item is no longer yours (skipped or expired)")
    source_text = ""
    if source_position is not None:
        if isinstance(source_position, bool) or not isinstance(source_position, int):
            raise InvalidValue("source_position", "must be a candidate position or null")
        found = Candidate.objects.filter(item_id=assignment.item_id, position=source_position).values_list("text", flat=True).first()
        if found is None:
            raise InvalidValue("source_position", f"the item has no candidate at position {source_position}")
        source_text = found
        if found.strip() == text.strip():
            raise InvalidValue("text", "is the same as the response it starts from; change it, or start from a blank page")
    with transaction.atomic():
        demonstration, _ = Demonstration.objects.update_or_create(
            item_id=assignment.item_id,
            rater=rater,
            defaults={"project": project, "text": text.strip(), "source_position": source_position, "source_text": source_text},
        )
        if finish:
            closed = Assignment.objects.filter(id=assignment.id, status=Assignment.Status.ACTIVE).update(
                status=Assignment.Status.SUBMITTED, finished_at=timezone.now()
            )
            if closed:
                # No judgment came of this lease: its slot goes back for another rater's.
                Item.objects.filter(id=assignment.item_id, taken__gt=0).update(taken=F("taken") - 1)
    return demonstration
