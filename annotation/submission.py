"""What a rater sends with an answer, checked in one place for the API and the labelling page.

The answer itself (`value`) is checked against the project's kind by annotation.kinds when it
is stored; this module checks the extras around it and their limits, which the API schema
(annotation.api.serializers_rater.SubmitSerializer) declares from the same constants.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from annotation import kinds

# The cap of every free text a person writes beside an answer: a rater's rationale (at submit
# and when they change it in My work) and a manager's adjudication note. free_text() checks it
# with the one wording, wherever the text comes in.
MAX_RATIONALE = 10_000
MAX_FLAGS = 20
MAX_FLAG_CHARS = 50
MAX_CLIENT_KEY = 64
# A day: anything longer is a tab left open, not time spent on the item.
MAX_DURATION_MS = 24 * 3600 * 1000

_MISSING = object()


class InvalidSubmission(kinds.InvalidValue):
    """One or more fields of a submission are wrong; `errors` maps each field to its message."""

    def __init__(self, errors: dict[str, str]):
        first, message = next(iter(errors.items()))
        super().__init__(first, message)
        self.errors = errors


@dataclass(frozen=True)
class Submission:
    value: object
    answers: object = None  # the other questions' answers, raw; annotation.questions checks them
    duration_ms: int | None = None
    rationale: str = ""
    flags: list[str] = field(default_factory=list)
    client_key: str = ""

    def as_kwargs(self) -> dict:
        """The keyword arguments of annotation.judgments.judgment_submit."""
        return {
            "value": self.value,
            "answers": self.answers,
            "duration_ms": self.duration_ms,
            "rationale": self.rationale,
            "flags": self.flags,
            "client_key": self.client_key,
        }


def free_text_error(raw) -> str | None:
    """Why `raw` is not an acceptable free text (rationale, note), or None when it is."""
    if not isinstance(raw, str) or len(raw) > MAX_RATIONALE:
        return f"must be text of at most {MAX_RATIONALE} characters"
    return None


def free_text(field: str, raw) -> str:
    """`raw` stripped, or InvalidSubmission naming `field` when it is not text or too long."""
    error = free_text_error(raw)
    if error is not None:
        raise InvalidSubmission({field: error})
    return raw.strip()


def _duration(raw) -> int | None:
    """Whole milliseconds from JSON (12, 12.0) or a form ("12"); ValueError/TypeError otherwise."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        raise ValueError(raw)
    if isinstance(raw, float) and not raw.is_integer():
        raise ValueError(raw)
    return int(raw)


def parse_submission(body) -> Submission:
    """A checked Submission from a JSON object or form data; raises InvalidSubmission naming
    every bad field at once."""
    if not isinstance(body, Mapping):
        raise InvalidSubmission({"body": "must be a JSON object"})
    errors: dict[str, str] = {}
    value = body.get("value", _MISSING)
    if value is _MISSING or value is None:
        errors["value"] = "this field is required"

    duration = None
    try:
        duration = _duration(body.get("duration_ms"))
    except (TypeError, ValueError):
        errors["duration_ms"] = "must be a whole number of milliseconds"
    else:
        if duration is not None and not 0 <= duration <= MAX_DURATION_MS:
            errors["duration_ms"] = f"must be between 0 and {MAX_DURATION_MS} (24 hours)"

    rationale = body.get("rationale") or ""
    if (rationale_error := free_text_error(rationale)) is not None:
        errors["rationale"] = rationale_error

    flags = body.get("flags") or []
    if (
        not isinstance(flags, list)
        or len(flags) > MAX_FLAGS
        or not all(isinstance(f, str) and 0 < len(f.strip()) <= MAX_FLAG_CHARS for f in flags)
    ):
        errors["flags"] = f"must be a list of at most {MAX_FLAGS} tags of 1 to {MAX_FLAG_CHARS} characters"

    client_key = body.get("client_key") or ""
    if not isinstance(client_key, str) or len(client_key) > MAX_CLIENT_KEY:
        errors["client_key"] = f"must be a string of at most {MAX_CLIENT_KEY} characters"

    answers = body.get("answers")
    if isinstance(answers, str):
        # A form posts the answers as one JSON field (label.js fills it).
        try:
            answers = json.loads(answers) if answers.strip() else None
        except ValueError:
            errors["answers"] = "must be a JSON object keyed by question"
    if answers is not None and not isinstance(answers, Mapping):
        errors.setdefault("answers", "must be an object keyed by question")

    if errors:
        raise InvalidSubmission(errors)
    return Submission(
        value=value,
        answers=dict(answers) if answers else None,
        duration_ms=duration,
        rationale=rationale.strip(),
        flags=[f.strip() for f in flags],
        client_key=client_key,
    )
