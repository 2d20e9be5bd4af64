"""Questions a project asks beside its primary judgment, and the answers to them.

A project keeps one primary judgment kind (annotation.kinds: binary, Likert, ranking, rating)
and may add questions, declared in `Project.questions` as a list of plain dicts:

- `scale`: a rating on a named integer scale (HelpSteer's helpfulness 0-4), per response or per item;
- `labels`: a multi-label choice (harm categories), per response or per item;
- `text`: a short free-text answer, per item.

One judgment holds every answer (`Judgment.answers`), keyed by question, candidates by
*position* as in the primary value, never by screen side:

    {"helpfulness": [3, 2],            scale per response: one score (or null if optional) per position
     "overall": 3,                     scale per item
     "harm": ["violence"],             labels per item: a subset of the choices, in declaration order
     "harm_each": [["violence"], []],  labels per response
     "note": "..."}                    text

An optional question left unanswered is absent. This module is the one place that checks both
the declaration (`validate_questions`, for the form, the API and the admin) and the answers
(`validate_answers`, for every submit, edit and import).
"""
from __future__ import annotations

import math
import re
from typing import Any

from annotation.kinds import InvalidValue

SCALE = "scale"
LABELS = "labels"
TEXT = "text"
TYPES = (SCALE, LABELS, TEXT)
PER_RESPONSE = "response"
PER_ITEM = "item"
PERS = (PER_RESPONSE, PER_ITEM)

# Bounds of a declaration. A screen with more than a dozen questions hides the responses it asks
# about; eleven points is the widest scale a row of keys can show.
MAX_QUESTIONS = 12
MAX_LABEL = 80
MAX_HELP = 1000
MAX_SCALE_LABEL = 200
SCALE_BOUNDS = (-100, 100)
MAX_SCALE_POINTS = 11
MAX_CHOICES = 20
MAX_CHOICE = 80
MAX_TEXT = 10_000
DEFAULT_TEXT = 500
KEY = re.compile(r"[a-z][a-z0-9_]{0,39}")
# Keys that would collide with the columns an export writes beside the answers.
RESERVED = frozenset({"prompt", "response", "item_id", "position", "model", "value", "answers", "chosen", "rejected", "label"})


class QuestionsError(ValueError):
    """A declaration that cannot work; `errors` maps each field ("questions[1].max") to a message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def _is_int(value: Any) -> bool:
    return type(value) is int


def _text(raw: Any, limit: int) -> str | None:
    return raw.strip() if isinstance(raw, str) and len(raw) <= limit else None


def _one(raw: Any, where: str, errors: dict[str, str]) -> dict | None:
    if not isinstance(raw, dict):
        errors[where] = "must be an object"
        return None
    unknown = set(raw) - {"key", "label", "type", "per", "required", "help", "min", "max", "scale_labels", "choices", "max_chars"}
    if unknown:
        errors[f"{where}.{sorted(unknown)[0]}"] = "unknown field"
    key = raw.get("key")
    if not isinstance(key, str) or not KEY.fullmatch(key):
        errors[f"{where}.key"] = "must be 1 to 40 lowercase letters, digits or _ starting with a letter"
    elif key in RESERVED or key.endswith("_count"):
        errors[f"{where}.key"] = f"{key!r} is a name the exports use; choose another"
    kind = raw.get("type")
    if kind not in TYPES:
        errors[f"{where}.type"] = f"must be one of {', '.join(TYPES)}"
        return None
    per = raw.get("per", PER_ITEM if kind == TEXT else PER_RESPONSE)
    if per not in PERS or (kind == TEXT and per != PER_ITEM):
        errors[f"{where}.per"] = "a text question is asked once per item" if kind == TEXT else "must be 'response' or 'item'"
    label = _text(raw.get("label", key), MAX_LABEL)
    if not label:
        errors[f"{where}.label"] = f"must be text of 1 to {MAX_LABEL} characters"
    help_text = _text(raw.get("help", ""), MAX_HELP)
    if help_text is None:
        errors[f"{where}.help"] = f"must be text of at most {MAX_HELP} characters"
    required = raw.get("required", False)
    if not isinstance(required, bool):
        errors[f"{where}.required"] = "must be true or false"
    out = {"key": key, "label": label, "type": kind, "per": per, "required": required, "help": help_text or ""}

    if kind == SCALE:
        low, high = raw.get("min", 1), raw.get("max", 5)
        for name, value in (("min", low), ("max", high)):
            if not _is_int(value) or not SCALE_BOUNDS[0] <= value <= SCALE_BOUNDS[1]:
                errors[f"{where}.{name}"] = f"must be an integer from {SCALE_BOUNDS[0]} to {SCALE_BOUNDS[1]}"
        if _is_int(low) and _is_int(high) and f"{where}.min" not in errors and f"{where}.max" not in errors:
            if low >= high:
                errors[f"{where}.max"] = "must be greater than min"
            elif high - low + 1 > MAX_SCALE_POINTS:
                errors[f"{where}.max"] = f"a scale has at most {MAX_SCALE_POINTS} points"
        labels = raw.get("scale_labels", [])
        if not isinstance(labels, list) or not all(isinstance(s, str) and len(s) <= MAX_SCALE_LABEL for s in labels):
            errors[f"{where}.scale_labels"] = f"must be a list of texts of at most {MAX_SCALE_LABEL} characters"
        elif labels and _is_int(low) and _is_int(high) and len(labels) != high - low + 1:
            errors[f"{where}.scale_labels"] = f"give one label per point ({high - low + 1}) or none"
        out.update({"min": low, "max": high, "scale_labels": [s.strip() for s in labels] if isinstance(labels, list) else []})
    elif kind == LABELS:
        choices = raw.get("choices")
        if (
            not isinstance(choices, list) or not 1 <= len(choices) <= MAX_CHOICES
            or not all(isinstance(c, str) and 0 < len(c.strip()) <= MAX_CHOICE for c in choices)
        ):
            errors[f"{where}.choices"] = f"must be a list of 1 to {MAX_CHOICES} labels of 1 to {MAX_CHOICE} characters"
            choices = []
        else:
            choices = [c.strip() for c in choices]
            if len(set(choices)) != len(choices):
                errors[f"{where}.choices"] = "each label may appear once"
        out["choices"] = choices
    else:
        max_chars = raw.get("max_chars", DEFAULT_TEXT)
        if not _is_int(max_chars) or not 1 <= max_chars <= MAX_TEXT:
            errors[f"{where}.max_chars"] = f"must be an integer from 1 to {MAX_TEXT}"
        out["max_chars"] = max_chars
    return out


def validate_questions(raw: Any) -> list[dict]:
    """The declaration in normal form (every field present), or QuestionsError naming each bad field."""
    if raw in (None, ""):
        return []
    if not isinstance(raw, list):
        raise QuestionsError({"questions": "must be a list of questions"})
    if len(raw) > MAX_QUESTIONS:
        raise QuestionsError({"questions": f"at most {MAX_QUESTIONS} questions"})
    errors: dict[str, str] = {}
    out = []
    for i, entry in enumerate(raw):
        where = f"questions[{i}]"
        question = _one(entry, where, errors)
        if question is None:
            continue
        if any(q["key"] == question["key"] for q in out):
            errors.setdefault(f"{where}.key", f"{question['key']!r} is used by another question")
        out.append(question)
    if errors:
        raise QuestionsError(errors)
    return out


def declared(project) -> list[dict]:
    """The project's questions (an empty list for a project that asks none)."""
    return list(getattr(project, "questions", None) or [])


def question(project, key: str) -> dict | None:
    return next((q for q in declared(project) if q["key"] == key), None)


def scale_questions(project) -> list[dict]:
    return [q for q in declared(project) if q["type"] == SCALE]


def label_questions(project) -> list[dict]:
    return [q for q in declared(project) if q["type"] == LABELS]


def points(q: dict) -> list[int]:
    """Every score of a scale question, lowest first."""
    return list(range(q["min"], q["max"] + 1))


def _score(q: dict, raw: Any, field: str, *, nullable: bool) -> int | None:
    if raw is None and nullable:
        return None
    # A float that is a whole number comes from JSON writers that know no integers (12.0); a bool is no score.
    if isinstance(raw, float) and math.isfinite(raw) and raw.is_integer():
        raw = int(raw)
    if not _is_int(raw) or not q["min"] <= raw <= q["max"]:
        raise InvalidValue(field, f"must be an integer from {q['min']} to {q['max']}")
    return raw


def _labels(q: dict, raw: Any, field: str) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(c, str) for c in raw):
        raise InvalidValue(field, "must be a list of labels")
    unknown = [c for c in raw if c not in q["choices"]]
    if unknown:
        raise InvalidValue(field, f"{unknown[0][:MAX_CHOICE]!r} is not one of {', '.join(q['choices'])}")
    chosen = set(raw)
    return [c for c in q["choices"] if c in chosen]


def _answer(q: dict, raw: Any, n_candidates: int) -> Any:
    field = f"answers.{q['key']}"
    if q["type"] == TEXT:
        if not isinstance(raw, str) or len(raw) > q["max_chars"]:
            raise InvalidValue(field, f"must be text of at most {q['max_chars']} characters")
        return raw.strip()
    if q["per"] == PER_ITEM:
        return _score(q, raw, field, nullable=False) if q["type"] == SCALE else _labels(q, raw, field)
    if not isinstance(raw, list) or len(raw) != n_candidates:
        raise InvalidValue(field, f"must be a list of {n_candidates} answers, one per response")
    if q["type"] == SCALE:
        return [_score(q, s, f"{field}[{i}]", nullable=True) for i, s in enumerate(raw)]
    return [_labels(q, s, f"{field}[{i}]") for i, s in enumerate(raw)]


def _empty(q: dict, value: Any) -> bool:
    if q["type"] == TEXT:
        return value == ""
    if q["type"] == SCALE and q["per"] == PER_RESPONSE:
        return all(s is None for s in value)
    return False


def validate_answers(project, raw: Any, n_candidates: int, *, enforce_required: bool = True) -> dict:
    """The answers in canonical form, or InvalidValue naming the first bad field.

    Required questions must be answered (every response, for a per-response question); an
    optional one may be left out. A project without questions takes only {} (or nothing).
    A gold item's expected answers (enforce_required=False) may cover only some questions."""
    questions = declared(project)
    if raw in (None, ""):
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidValue("answers", "must be an object keyed by question")
    by_key = {q["key"]: q for q in questions}
    unknown = [k for k in raw if k not in by_key]
    if unknown:
        raise InvalidValue(f"answers.{str(unknown[0])[:40]}", "this project asks no such question")
    clean: dict = {}
    for q in questions:
        if q["key"] in raw and raw[q["key"]] is not None:
            value = _answer(q, raw[q["key"]], n_candidates)
            if not _empty(q, value):
                clean[q["key"]] = value
                if enforce_required and q["required"] and q["per"] == PER_RESPONSE and q["type"] == SCALE and None in value:
                    raise InvalidValue(f"answers.{q['key']}[{value.index(None)}]", "this question is required for every response")
                continue
        if q["required"] and enforce_required:
            raise InvalidValue(f"answers.{q['key']}", "this question is required")
    return clean


def describe(q: dict) -> str:
    """One line for the card and the admin: 'helpfulness: scale 0-4 per response, required'."""
    if q["type"] == SCALE:
        shape = f"scale {q['min']}-{q['max']}"
    elif q["type"] == LABELS:
        shape = f"labels ({', '.join(q['choices'])})"
    else:
        shape = f"text up to {q['max_chars']} characters"
    return f"{q['key']}: {shape} per {q['per']}, {'required' if q['required'] else 'optional'}"


def form_field(q: dict, position: int | None = None) -> str:
    """The plain-form field of a question (the page without JavaScript, My work, adjudication):
    `q_<key>` for the item, `q_<key>_<position>` for one response."""
    return f"q_{q['key']}" if position is None else f"q_{q['key']}_{position}"


def answers_from_form(project, post, n_candidates: int) -> dict:
    """A plain form post -> raw answers for validate_answers. A scale is one field (radio or
    select) per response or per item; labels are checkboxes (one field listed many times);
    text is one field. Empty fields are left out, so an unanswered optional question is absent."""
    raw: dict = {}
    for q in declared(project):
        if q["type"] == TEXT:
            text = post.get(form_field(q), "")
            if text.strip():
                raw[q["key"]] = text
            continue
        fields = [form_field(q)] if q["per"] == PER_ITEM else [form_field(q, p) for p in range(n_candidates)]
        if q["type"] == LABELS:
            # A checkbox group posts nothing when none is ticked: an answer of "none apply".
            values = [list(post.getlist(f)) if hasattr(post, "getlist") else list(post.get(f) or []) for f in fields]
        else:
            values = [_form_score(post.get(f, ""), f) for f in fields]
            if all(v is None for v in values):
                continue
        raw[q["key"]] = values[0] if q["per"] == PER_ITEM else values
    return raw


def _form_score(text: str, field: str) -> int | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise InvalidValue(f"answers.{field.removeprefix('q_')}", "must be a whole number") from None
