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
from annotation.models import Adjudication, Candidate, Item, Judgment, Project
from annotation.my_work import prompt_snippet

# Judgments read at most for the queue: a page for people, not a batch job.
QUEUE_JUDGMENT_LIMIT = 200_000


# How much of each candidate the queue shows beside the prompt snippet.
CANDIDATE_SNIPPET_CHARS = 60


@dataclass(frozen=True)
class Disputed:
    item_id: int
    external_id: str
    judgments: int
    agreement: float
    adjudicated: bool
    flagged: bool = False
    snippet: str = ""
    candidates: tuple[str, ...] = ()


def disagreement_queue(*, project: Project, limit: int = 100, include_adjudicated: bool = True,
                       needing_decision: bool = False, exclude: int | None = None) -> list[Disputed]:
    """Items with two or more human judgments, lowest per-item agreement first (flagged ones
    first among equals); needing_decision: only those whose raters disagree or flagged them.
    Each row names its item by a prompt snippet and the candidates' starts (the page shows
    what an item is about, not an importer's id)."""
    rows = (
        Judgment.objects.filter(project=project, source=Judgment.Source.HUMAN, kind=project.kind, item__judgment_count__gte=2)
        .order_by("item_id")
        .values_list("item_id", "value", "flags")[:QUEUE_JUDGMENT_LIMIT]
    )
    by_item: dict[int, list[dict]] = defaultdict(list)
    flagged: set[int] = set()
    for item_id, value, flags in rows:
        by_item[item_id].append(value)
        if flags:
            flagged.add(item_id)
    scored = []
    for item_id, values in by_item.items():
        if len(values) < 2 or item_id == exclude:
            continue
        agreed = consensus.item_consensus(project.kind, values, rating_threshold=project.rating_threshold)
        agreement = agreed.agreement if agreed else 0.0
        # A unanimous, unflagged item has its answer already; listing it only buries the ones
        # that need a manager.
        if needing_decision and agreement >= 1.0 and item_id not in flagged:
            continue
        scored.append((agreement, item_id not in flagged, item_id, len(values)))
    scored.sort()
    done = set(Adjudication.objects.filter(project=project, item_id__in=[s[2] for s in scored]).values_list("item_id", flat=True))
    if not include_adjudicated:
        scored = [s for s in scored if s[2] not in done]
    scored = scored[:limit]
    ids = [s[2] for s in scored]
    items = {pk: (external_id, prompt) for pk, external_id, prompt in Item.objects.filter(id__in=ids).values_list("id", "external_id", "prompt")}
    cands: dict[int, list[str]] = defaultdict(list)
    for item_id, text in Candidate.objects.filter(item_id__in=ids).order_by("item_id", "position").values_list("item_id", "text"):
        cands[item_id].append(prompt_snippet(text, CANDIDATE_SNIPPET_CHARS))
    return [
        Disputed(item_id, items.get(item_id, (str(item_id), ""))[0], n, round(agreement, 3), item_id in done,
                 flagged=not unflagged, snippet=prompt_snippet(items.get(item_id, ("", ""))[1]), candidates=tuple(cands.get(item_id, ())))
        for agreement, unflagged, item_id, n in scored
    ]


def next_to_decide(*, project: Project, after: int) -> int | None:
    """The next item that still needs a final answer, for "save and next"; None when none is left."""
    queue = disagreement_queue(project=project, limit=1, include_adjudicated=False, needing_decision=True, exclude=after)
    return queue[0].item_id if queue else None


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
