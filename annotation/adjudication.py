"""Adjudication: managers look at the items whose raters disagree most and set a final answer.

Per-item agreement is the share of an item's judgments that agree with its consensus
(annotation.quality.consensus, the same figure the snapshot card averages); an even split has no
consensus and counts as 0. Snapshots built with `use_adjudicated` take the final answer in place
of the raters' judgments of that item (annotation.exports.build).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.db import transaction

from annotation import kinds, submission

from annotation.quality import consensus
from annotation.models import Adjudication, Item, Judgment, Project

# Judgments read at most for the queue: a page for people, not a batch job.
QUEUE_JUDGMENT_LIMIT = 200_000


@dataclass(frozen=True)
class Disputed:
    item_id: int
    external_id: str
    judgments: int
    agreement: float
    adjudicated: bool


def disagreement_queue(*, project: Project, limit: int = 100, include_adjudicated: bool = True) -> list[Disputed]:
    """Items with two or more human judgments, lowest per-item agreement first."""
    rows = (
        Judgment.objects.filter(project=project, source=Judgment.Source.HUMAN, kind=project.kind, item__judgment_count__gte=2)
        .order_by("item_id")
        .values_list("item_id", "value")[:QUEUE_JUDGMENT_LIMIT]
    )
    by_item: dict[int, list[dict]] = defaultdict(list)
    for item_id, value in rows:
        by_item[item_id].append(value)
    scored = []
    for item_id, values in by_item.items():
        if len(values) < 2:
            continue
        agreed = consensus.item_consensus(project.kind, values, rating_threshold=project.rating_threshold)
        scored.append((agreed.agreement if agreed else 0.0, item_id, len(values)))
    scored.sort()
    done = set(Adjudication.objects.filter(project=project, item_id__in=[s[1] for s in scored]).values_list("item_id", flat=True))
    if not include_adjudicated:
        scored = [s for s in scored if s[1] not in done]
    scored = scored[:limit]
    names = dict(Item.objects.filter(id__in=[s[1] for s in scored]).values_list("id", "external_id"))
    return [Disputed(item_id, names.get(item_id, str(item_id)), n, round(agreement, 3), item_id in done) for agreement, item_id, n in scored]


def item_judgments(*, project: Project, item: Item) -> list[Judgment]:
    return list(Judgment.objects.filter(project=project, item=item, source=Judgment.Source.HUMAN).select_related("rater").order_by("id"))


def adjudication_set(*, project: Project, item: Item, value: dict, note: str, decided_by) -> Adjudication:
    """Store (or replace) the final answer of an item; the value is checked like a rater's, and
    the note has the cap of a rater's rationale (InvalidSubmission naming `note`)."""
    if item.project_id != project.id:
        raise PermissionError("item of another project")
    clean = kinds.validate_value(project, value, item.candidates.count())
    note = submission.free_text("note", note)
    with transaction.atomic():
        adjudication, _ = Adjudication.objects.update_or_create(
            item=item, defaults={"project": project, "value": clean, "note": note, "decided_by": decided_by}
        )
    return adjudication


def adjudication_clear(*, project: Project, item: Item) -> bool:
    return Adjudication.objects.filter(project=project, item=item).delete()[0] > 0
