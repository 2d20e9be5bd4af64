"""What the labelling page shows for one lease, and how a plain form post becomes an answer.

The screen names candidates by side (A, B, … or card 1..K, in the assignment's display_order);
answers are stored by candidate *position* (annotation.kinds). Every control on the page
therefore carries the canonical value it stands for (data-value for label.js, the form value
for a post without JavaScript), computed here from display_order, so no screen side ever
reaches the database.
"""
from __future__ import annotations

import json
from string import ascii_uppercase

from django.urls import reverse

from annotation import kinds, questions, submission
from annotation.assignment import assignment_candidates
from annotation.kinds import BOTH_BAD, TIE, Kind
from annotation.models import Assignment, Project

# Keys for the n-th point of a scale, in keyboard order (a Likert scale has at most 11 points).
SCALE_KEYS = "1234567890-="
ROLE_NAMES = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}


def screen_label(index: int) -> str:
    """The on-screen name of the index-th candidate shown: A, B, ... Z, then 27, 28, ..."""
    return ascii_uppercase[index] if index < 26 else str(index + 1)


def likert_choices(project: Project, side_a: int, side_b: int) -> list[dict]:
    """The points of the scale, left ("A much better") to right ("B much better")."""
    points = project.likert_points
    half = kinds.likert_half(points)
    labels = project.likert_labels if len(project.likert_labels or []) == points else default_likert_labels(points)
    choices = []
    for i in range(1, points + 1):
        if i <= half:
            value = {"winner": side_a, "strength": half - i + 1}
        elif points % 2 == 1 and i == half + 1:
            value = {"winner": TIE, "strength": 0}
        else:
            value = {"winner": side_b, "strength": i - (points - half)}
        choices.append({"key": SCALE_KEYS[i - 1], "point": i, "label": labels[i - 1], "value": json.dumps(value), "form": f"{value['winner']}:{value['strength']}"})
    return choices


def default_likert_labels(points: int) -> list[str]:
    half = kinds.likert_half(points)

    def words(strength: int) -> str:
        if half == 1:
            return "better"
        if strength == half:
            return "much better"
        if strength == 1:
            return "slightly better"
        return "better"

    left = [f"A {words(s)}" for s in range(half, 0, -1)]
    right = [f"B {words(s)}" for s in range(1, half + 1)]
    return left + (["About the same"] if points % 2 else []) + right


def binary_choices(project: Project, side_a: int, side_b: int) -> list[dict]:
    choices = [
        {"key": "a", "shown": "A", "label": "A is better", "form": str(side_a), "value": json.dumps({"winner": side_a})},
        {"key": "b", "shown": "B", "label": "B is better", "form": str(side_b), "value": json.dumps({"winner": side_b})},
    ]
    if project.allow_tie:
        choices.append({"key": "t", "shown": "T", "label": "Tie", "form": TIE, "value": json.dumps({"winner": TIE})})
    if project.allow_both_bad:
        choices.append({"key": "x", "shown": "X", "label": "Both bad", "form": BOTH_BAD, "value": json.dumps({"winner": BOTH_BAD})})
    return choices


def rating_choices(project: Project) -> list[dict]:
    scores = list(range(project.rating_min, project.rating_max + 1))
    labels = project.rating_labels if len(project.rating_labels or []) == len(scores) else [""] * len(scores)
    # Digit keys name the score itself when the scale fits on them (1..5, 0..9); otherwise the n-th key.
    natural = project.rating_min >= 0 and project.rating_max <= 9
    choices = []
    for i, score in enumerate(scores):
        key = str(score) if natural else (SCALE_KEYS[i] if i < len(SCALE_KEYS) else "")
        # The score itself is printed only when its key does not already say it.
        choices.append({"score": score, "key": key, "label": labels[i], "show_score": key != str(score)})
    return choices


def _messages(prompt) -> list[dict]:
    out = []
    for message in prompt:
        if isinstance(message, dict):
            role = str(message.get("role", "")) or "message"
            content = message.get("content", "")
        else:
            role, content = "message", message
        if not isinstance(content, str):
            content = json.dumps(content, ensure_ascii=False)
        out.append({"role": ROLE_NAMES.get(role, role.title()), "role_class": role if role in ROLE_NAMES else "other", "content": content})
    return out


def item_text(*, assignment: Assignment, part: str) -> str | None:
    """One whole text of the assignment's item by its part name ("prompt", "prompt-<i>" for the
    i-th chat message, "candidate-<position>"), or None when there is no such part."""
    item = assignment.item
    name, _, index = part.partition("-")
    if name == "prompt" and not index and not item.is_chat:
        return item.prompt if isinstance(item.prompt, str) else None
    if not index.isdigit():
        return None
    if name == "prompt" and item.is_chat:
        messages = _messages(item.prompt)
        return messages[int(index)]["content"] if int(index) < len(messages) else None
    if name == "candidate":
        candidate = item.candidates.filter(position=int(index)).only("text").first()
        return candidate.text if candidate else None
    return None


def item_context(*, project: Project, assignment: Assignment, answers: dict | None = None) -> dict:
    item = assignment.item
    # assignment_candidates reuses the candidates lease_next already fetched (no extra query).
    shown = assignment_candidates(assignment)
    order = [c.position for c in shown]

    def text_url(part: str) -> str:
        return reverse("annotation:label-text", kwargs={"slug": project.slug, "assignment_id": assignment.id, "part": part})

    cards = [
        {"index": i + 1, "label": screen_label(i), "position": c.position, "text": c.text, "full_url": text_url(f"candidate-{c.position}")}
        for i, c in enumerate(shown)
    ]
    chat = _messages(item.prompt) if item.is_chat else []
    for i, message in enumerate(chat):
        message["full_url"] = text_url(f"prompt-{i}")
    context = {
        "prompt_url": text_url("prompt"),
        "assignment": assignment,
        "item": item,
        "cards": cards,
        "display_order_json": json.dumps(order),
        "is_chat": item.is_chat,
        "chat": chat,
        "submit_url": reverse("annotation:label-submit", kwargs={"slug": project.slug, "assignment_id": assignment.id}),
        "skip_url": reverse("annotation:label-skip", kwargs={"slug": project.slug, "assignment_id": assignment.id}),
        **answer_context(project, order),
    }
    context.update(question_context(project=project, cards=cards, answers=answers))
    return context


def answer_context(project: Project, order: list[int]) -> dict:
    """The controls of the answer row for candidates shown in `order` (positions)."""
    # max_text: the rationale box holds what the submit accepts (annotation.submission).
    context: dict = {"rank_choices": list(range(1, len(order) + 1)), "max_text": submission.MAX_RATIONALE}
    if project.kind == Kind.BINARY and len(order) == 2:
        context["choices"] = binary_choices(project, order[0], order[1])
    elif project.kind == Kind.LIKERT and len(order) == 2:
        context["choices"] = likert_choices(project, order[0], order[1])
    elif project.kind == Kind.RATING:
        context["scores"] = rating_choices(project)
    return context


# What the new-project form's preview shows raters: a real question, answers of mixed quality.
SAMPLE_PROMPT = "How do I reverse a list in Python, keeping the original?"
SAMPLE_RESPONSES = [
    "Use slicing, which returns a **new** list:\n\n```python\nreversed_numbers = numbers[::-1]\n```",
    "Call `numbers.reverse()`. Note that it changes `numbers` itself and returns `None`.",
    "`list(reversed(numbers))` builds a new list from the reverse iterator.",
    "Sort it descending with `sorted(numbers, reverse=True)`. (This sorts; it does not reverse.)",
    "Loop from the end: `[numbers[i] for i in range(len(numbers) - 1, -1, -1)]`.",
]
PREVIEW_MAX_CANDIDATES = 9


def preview_context(*, project: Project) -> dict:
    """The context of _label_item.html for an unsaved project with sample content: the
    new-project form shows raters' view through the very template they will see."""
    k = project.candidates_range[1] or 2  # the most an item may have: a ranking preview shows K_max
    k = max(1, min(k, PREVIEW_MAX_CANDIDATES))
    cards = [
        {"index": i + 1, "label": screen_label(i), "position": i, "text": SAMPLE_RESPONSES[i % len(SAMPLE_RESPONSES)]}
        for i in range(k)
    ]
    return {
        "project": project,
        "assignment": None,
        "item": {"prompt": SAMPLE_PROMPT},
        "cards": cards,
        "display_order_json": json.dumps(list(range(k))),
        "is_chat": False,
        "chat": [],
        "submit_url": "",
        "skip_url": "",
        **answer_context(project, list(range(k))),
        **question_context(project=project, cards=cards),
    }


def question_points(q: dict) -> list[dict]:
    """The points of a scale question, lowest first, each with its key. As for a rating, a digit
    names the score itself when the scale fits on the digits (0-4, 1-5); otherwise the n-th key."""
    labels = q.get("scale_labels") or []
    natural = q["min"] >= 0 and q["max"] <= 9
    out = []
    for i, score in enumerate(questions.points(q)):
        key = str(score) if natural else (SCALE_KEYS[i] if i < len(SCALE_KEYS) else "")
        out.append({"score": score, "key": key, "label": labels[i] if i < len(labels) else "", "show_key": key != str(score)})
    return out


def question_control(q: dict, *, position: int | None = None, card_label: str = "", value=None) -> dict:
    """What _question_controls.html draws for one question (for one response, or for the item),
    preset to `value` (that response's or the item's canonical answer, None: unanswered)."""
    control = {
        "key": q["key"], "label": q["label"], "help": q["help"], "type": q["type"], "per": q["per"], "required": q["required"],
        "field": questions.form_field(q, position), "position": position, "card_label": card_label,
    }
    if q["type"] == questions.SCALE:
        control["points"] = [dict(p, checked=value == p["score"]) for p in question_points(q)]
        control["scale_help"] = [f"{p['score']} = {p['label']}" for p in control["points"] if p["label"]]
    elif q["type"] == questions.LABELS:
        chosen = set(value or [])
        # Digits 1..9 and 0 toggle the first ten labels of the focused question (label.js).
        control["choices"] = [
            {"name": c, "key": str(i + 1) if i < 9 else ("0" if i == 9 else ""), "checked": c in chosen} for i, c in enumerate(q["choices"])
        ]
    else:
        control["value"] = value or ""
        control["max_chars"] = q["max_chars"]
    return control


def question_context(*, project: Project, cards: list[dict], answers: dict | None = None) -> dict:
    """The project's questions as controls: `cards` gain `questions` (the per-response ones, drawn
    under each response), `item_questions` go in the answer row; `questions_json` tells label.js
    what to collect. Preset to `answers` (canonical, by position) when given (My work)."""
    declared = questions.declared(project)
    answers = answers or {}
    per_response = [q for q in declared if q["per"] == questions.PER_RESPONSE]
    for card in cards:
        p = card["position"]
        card["questions"] = [
            question_control(q, position=p, card_label=card["label"], value=_nth(answers.get(q["key"]), p)) for q in per_response
        ]
    item_questions = [question_control(q, value=answers.get(q["key"])) for q in declared if q["per"] == questions.PER_ITEM]
    shape = [{"key": q["key"], "label": q["label"], "type": q["type"], "per": q["per"], "required": q["required"]} for q in declared]
    return {"item_questions": item_questions, "questions_json": json.dumps(shape), "has_questions": bool(declared)}


def _nth(value, position: int):
    return value[position] if isinstance(value, list) and position < len(value) else None


def value_from_form(project: Project, post, n_candidates: int) -> dict:
    """A plain form post (no JavaScript) -> an answer for kinds.validate_value.

    Fields: binary `winner` (a position, "tie" or "both_bad"); likert `likert` ("winner:strength");
    ranking `rank_<position>` (1 = best; equal ranks form a tier); rating `score_<position>`.
    """
    if project.kind == Kind.BINARY:
        winner = post.get("winner", "")
        if winner in (TIE, BOTH_BAD):
            return {"winner": winner}
        return {"winner": _int_field(winner, "winner")}
    if project.kind == Kind.LIKERT:
        raw = post.get("likert", "")
        winner, _, strength = raw.partition(":")
        if winner == TIE:
            return {"winner": TIE, "strength": 0}
        return {"winner": _int_field(winner, "likert"), "strength": _int_field(strength, "likert")}
    if project.kind == Kind.RANKING:
        ranks = {p: _int_field(post.get(f"rank_{p}", ""), f"rank_{p}") for p in range(n_candidates)}
        return {"ranking": [sorted(p for p, r in ranks.items() if r == rank) for rank in sorted(set(ranks.values()))]}
    if project.kind == Kind.RATING:
        return {"scores": [_int_field(post.get(f"score_{p}", ""), f"score_{p}") for p in range(n_candidates)]}
    raise kinds.InvalidValue("kind", f"unknown judgment kind {project.kind!r}")


def _int_field(raw: str, field: str) -> int:
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise kinds.InvalidValue(field, "choose an answer" if raw in ("", None) else f"not a number: {raw!r}") from None


# Public name for the pages outside labelling that show a chat prompt (My work, adjudication).
chat_messages = _messages
