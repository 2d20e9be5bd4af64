"""A rater's own work on a project: their judgments, newest first, and changing one within the
project's edit window.

A change is a new version: the Judgment row always holds the latest answer (so snapshots, quality
and the leaderboard read the latest without knowing about versions) and the answer it replaces
is kept as a JudgmentRevision, which the raw `judgments` export lists beside it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from annotation import kinds, questions, submission
from annotation.models import Assignment, Judgment, JudgmentRevision, Project
from config.jsonlimits import scrub

# "Kind of answer" filters of the history page: what a rater recognises of their own answers.
ANSWER_FILTERS = {
    "preferred": "picked one",
    "tie": "tie",
    "both_bad": "both bad",
    "changed": "changed",
}


# How much of a prompt names an item to a rater (see prompt_snippet).
SNIPPET_CHARS = 80
CANDIDATE_SNIPPET_CHARS = 60


class EditWindowClosed(Exception):
    """The judgment is older than the project's edit window (or the project allows no changes)."""


def my_judgments(*, project: Project, rater, answer: str = "") -> QuerySet[Judgment]:
    """The rater's human judgments on the project, newest first, optionally of one kind of answer."""
    qs = Judgment.objects.filter(project=project, rater=rater, source=Judgment.Source.HUMAN).select_related("item").order_by("-created_at", "-id")
    if answer == "tie":
        qs = qs.filter(value__winner=kinds.TIE)
    elif answer == "both_bad":
        qs = qs.filter(value__winner=kinds.BOTH_BAD)
    elif answer == "preferred":
        qs = qs.filter(value__winner__in=[0, 1]) if project.kind in (kinds.Kind.BINARY, kinds.Kind.LIKERT) else qs
    elif answer == "changed":
        qs = qs.filter(version__gt=1)
    return qs


def prompt_snippet(prompt, limit: int = SNIPPET_CHARS) -> str:
    """How an item is named to a rater: the start of its prompt (the last user message of a chat),
    whitespace folded. Never the external id: ids are the importer's names, and a demo's gold
    items are literally called gold-001, so an id would tell a rater which answers are checked.
    Plain text; templates escape it."""
    text = prompt
    if isinstance(prompt, list):
        contents = [m.get("content") if isinstance(m, dict) else m for m in prompt]
        users = [m.get("content") for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        text = (users or contents or [""])[-1]
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def candidate_snippets(*, judgments: list[Judgment], limit: int = CANDIDATE_SNIPPET_CHARS) -> dict[int, list[dict]]:
    """Per judgment, the start of each response in the order its rater saw them, named A, B, ...
    as on their screen: one query for the whole page, not one per row."""
    from annotation.labelling import screen_label
    from annotation.models import Candidate

    texts: dict[int, dict[int, str]] = {}
    rows = Candidate.objects.filter(item_id__in={j.item_id for j in judgments}).values_list("item_id", "position", "text")
    for item_id, position, text in rows:
        texts.setdefault(item_id, {})[position] = prompt_snippet(text, limit)
    shown = {}
    for j in judgments:
        by_position = texts.get(j.item_id, {})
        order = [p for p in (j.display_order or []) if p in by_position] or sorted(by_position)
        shown[j.id] = [{"label": screen_label(i), "text": by_position[p]} for i, p in enumerate(order)]
    return shown


def skipped_count(*, project: Project, rater) -> int:
    """Items the rater skipped and has not answered since (they come back at the end of the queue)."""
    return Assignment.objects.filter(project=project, rater=rater, status=Assignment.Status.SKIPPED).count()


def edit_deadline(*, project: Project, judgment: Judgment) -> datetime | None:
    """Until when the rater may change this judgment; None when never."""
    if project.edit_window_minutes <= 0:
        return None
    return judgment.created_at + timedelta(minutes=project.edit_window_minutes)


def can_edit(*, project: Project, judgment: Judgment, now: datetime | None = None) -> bool:
    deadline = edit_deadline(project=project, judgment=judgment)
    return deadline is not None and (now or timezone.now()) < deadline


@dataclass(frozen=True)
class Change:
    judgment: Judgment
    changed: bool  # False: the same answer and rationale again, nothing stored


def judgment_change(
    *, judgment: Judgment, rater, value: dict, answers: dict | None = None, rationale: str | None = None, now: datetime | None = None
) -> Change:
    """Replace the rater's answer with a new version, keeping the old one as a revision.

    The window counts from the first answer (created_at), so repeated changes cannot stretch it.
    Gold items are checked again (and the rater's gold standing with them). A rationale longer
    than the submit allows is refused the same way (InvalidSubmission naming `rationale`)."""
    if judgment.rater_id != rater.id or judgment.source != Judgment.Source.HUMAN:
        raise PermissionError("not your judgment")
    project = judgment.project
    now = now or timezone.now()
    if not can_edit(project=project, judgment=judgment, now=now):
        raise EditWindowClosed(
            "this project does not let raters change their answers" if project.edit_window_minutes <= 0
            else f"answers can be changed for {project.edit_window_minutes} minutes after submitting; this one is older"
        )
    n_candidates = len(judgment.display_order) or judgment.item.candidates.count()
    clean = kinds.validate_value(project, value, n_candidates)
    # None keeps the answers to the other questions as they are (a form that shows only the judgment).
    clean_answers = judgment.answers if answers is None else questions.validate_answers(project, answers, n_candidates)
    new_rationale = judgment.rationale if rationale is None else submission.free_text("rationale", rationale)
    if clean == judgment.value and clean_answers == judgment.answers and new_rationale == judgment.rationale:
        return Change(judgment, False)
    with transaction.atomic():
        current = Judgment.objects.select_for_update().get(id=judgment.id)
        revision_of(current).save()
        current.value = clean
        current.answers = clean_answers
        current.rationale = new_rationale
        current.version += 1
        current.changed_at = now
        if current.gold_correct is not None and current.item.gold:
            current.gold_correct = kinds.gold_matches(project.kind, current.item.gold, clean, rating_threshold=project.rating_threshold)
        current.save(update_fields=["value", "answers", "rationale", "version", "changed_at", "gold_correct"])
    if current.gold_correct is not None:
        from annotation.quality.gold import gold_check_rater

        gold_check_rater(project=project, rater=rater)
    return Change(current, True)


def revision_of(judgment: Judgment) -> JudgmentRevision:
    """The judgment's current version as a revision row (unsaved). Its texts are scrubbed of lone
    surrogates by the function the live columns' decoder uses (config.jsonlimits.scrub): a row
    stored before input was checked must not carry one into the revision table or the export."""
    return JudgmentRevision(
        judgment=judgment,
        version=judgment.version,
        value=scrub(judgment.value),
        answers=scrub(judgment.answers or {}),
        rationale=scrub(judgment.rationale),
        duration_ms=judgment.duration_ms,
        given_at=judgment.changed_at or judgment.created_at,
    )


def describe_answer(kind: str, value: dict, display_order: list[int]) -> str:
    """An answer in the words of the screen the rater saw: responses named A, B, ... in the
    judgment's on-screen order (positions never reach the page)."""
    from annotation.labelling import screen_label

    order = list(display_order or [])

    def name(position: int) -> str:
        return screen_label(order.index(position)) if position in order else f"#{position + 1}"

    if kind in (kinds.Kind.BINARY, kinds.Kind.LIKERT):
        winner = value.get("winner")
        if winner == kinds.TIE:
            return "About the same" if kind == kinds.Kind.LIKERT else "Tie"
        if winner == kinds.BOTH_BAD:
            return "Both bad"
        strength = value.get("strength")
        return f"{name(winner)} better" + (f" (strength {strength})" if kind == kinds.Kind.LIKERT else "")
    if kind == kinds.Kind.RANKING:
        return " > ".join(" = ".join(name(p) for p in tier) for tier in value.get("ranking", []))
    if kind == kinds.Kind.RATING:
        scores = value.get("scores", [])
        shown = order or list(range(len(scores)))
        return ", ".join(f"{name(p)}: {scores[p]}" for p in shown if p < len(scores))
    return str(value)
