"""Answer controls outside the labelling page (My work, adjudication): the kind's plain form
controls for a known set of cards, preset to an answer, parsed back by labelling.value_from_form.

The labelling page draws its own controls (label.js drives them); these pages are plain forms,
so they work without JavaScript and share the parsing of the page's no-JS path."""
from __future__ import annotations

from annotation import kinds, questions
from annotation.kinds import Kind
from annotation.labelling import binary_choices, likert_choices, rating_choices, screen_label
from annotation.models import Project


def cards_for(item, order: list[int]) -> list[dict]:
    """The item's candidates in `order` (positions), named A, B, ... as the screen named them."""
    by_position = {c.position: c for c in item.candidates.all()}
    order = [p for p in (order or sorted(by_position)) if p in by_position]
    return [{"index": i + 1, "label": screen_label(i), "position": p, "text": by_position[p].text, "model": by_position[p].model_name} for i, p in enumerate(order)]


def answer_controls(project: Project, cards: list[dict], value: dict | None) -> dict:
    """Template context for _answer_controls.html, preset to `value` (canonical) when given."""
    value = value or {}
    context: dict = {"kind": project.kind, "cards": cards}
    order = [c["position"] for c in cards]
    if project.kind == Kind.BINARY and len(cards) == 2:
        current = str(value.get("winner", ""))
        context["choices"] = [dict(c, checked=c["form"] == current) for c in binary_choices(project, order[0], order[1])]
        context["field"] = "winner"
    elif project.kind == Kind.LIKERT and len(cards) == 2:
        current = f"{value.get('winner')}:{value.get('strength')}" if value else ""
        context["choices"] = [dict(c, checked=c["form"] == current) for c in likert_choices(project, order[0], order[1])]
        context["field"] = "likert"
    elif project.kind == Kind.RANKING:
        rank_of = {p: i + 1 for i, tier in enumerate(value.get("ranking", [])) for p in tier}
        context["ranks"] = list(range(1, len(cards) + 1))
        context["cards"] = [dict(c, rank=rank_of.get(c["position"])) for c in cards]
    elif project.kind == Kind.RATING:
        scores = value.get("scores") or []
        context["scores"] = rating_choices(project)
        context["cards"] = [dict(c, score=scores[c["position"]] if c["position"] < len(scores) else None) for c in cards]
    return context


def is_valid(project: Project, value: dict, n: int) -> bool:
    try:
        kinds.validate_value(project, value, n)
    except kinds.InvalidValue:
        return False
    return True


def describe_answers(project: Project, answers: dict | None, order: list[int]) -> list[dict]:
    """The answers to the project's questions in the screen's words, one line per question:
    [{"key", "label", "text": "A 3, B 1"}] with responses named as in `order` (positions)."""
    answers = answers or {}
    label_of = {p: screen_label(i) for i, p in enumerate(order or [])}
    lines = []
    for q in questions.declared(project):
        if q["key"] not in answers:
            continue
        value = answers[q["key"]]
        if q["per"] == questions.PER_RESPONSE and isinstance(value, list):
            shown = order or list(range(len(value)))
            text = ", ".join(f"{label_of.get(p, f'#{p + 1}')} {_shown(q, value[p])}" for p in shown if p < len(value))
        else:
            text = _shown(q, value)
        lines.append({"key": q["key"], "label": q["label"], "text": text})
    return lines


def _shown(q: dict, value) -> str:
    if value is None:
        return "–"
    if q["type"] == questions.LABELS:
        return ", ".join(value) if value else "none"
    return str(value)
