"""What a snapshot is built from: every option with its default in one place.

Options are stored on the snapshot row (and in its manifest) as a plain dict, so a snapshot can
always be rebuilt or explained from its own record.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from annotation.quality.consensus import DAWID_SKENE, MAJORITY

NONE = "none"
AGGREGATIONS = (NONE, MAJORITY, DAWID_SKENE)
SOURCES = ("human", "import", "ai")
FORMATS = ("preference", "unpaired", "sft", "judgments", "prompts", "attributes", "labels")
# Formats written only when a project of the snapshot asks questions of that type
# (annotation.questions): a snapshot of projects without questions keeps the five folders it always had.
QUESTION_FORMATS = ("attributes", "labels")


class OptionsError(ValueError):
    """Bad snapshot options; `errors` maps each field to a message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class SnapshotOptions:
    # Which judgments count. "import" (judgments that came with the items) counts as human.
    sources: list[str] = field(default_factory=lambda: ["human", "import"])
    # How several judgments of one item combine: none (each judgment gives its own rows),
    # majority vote, or dawid_skene (reliability-weighted, for binary/Likert winners).
    aggregation: str = MAJORITY
    # Items whose judgments agree less than this with the consensus are left out (0..1).
    min_agreement: float = 0.0
    # SFT rows need raters to agree on the best response: agreement at least this (1.0 = all).
    sft_min_agreement: float = 1.0
    # Tie / "both bad" judgments: kept, they count as votes (a tie gives no pair; "both bad"
    # gives two negatives for unpaired data). Dropped, they are left out before anything else.
    keep_ties: bool = True
    keep_both_bad: bool = True
    # Gold items are for checking raters; by default they stay out of the dataset.
    keep_gold: bool = False
    # Judgments of paused raters (gold accuracy too low, or paused by a manager) stay out.
    exclude_paused: bool = True
    # Items a manager adjudicated (annotation.adjudication) take the manager's final answer in
    # place of the raters' judgments and their consensus.
    use_adjudicated: bool = False
    # Demonstrations raters wrote (sft rows, and rewrite > original pairs in preference).
    keep_demonstrations: bool = True
    test_share: float = 0.1
    seed: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "SnapshotOptions":
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        errors: dict[str, str] = {name: "unknown option" for name in data if name not in known}
        opts = cls()
        for name in known & set(data):
            value = data[name]
            try:
                setattr(opts, name, _coerce(name, value, getattr(opts, name)))
            except (TypeError, ValueError) as exc:
                errors[name] = str(exc)
        errors.update(opts.errors())
        if errors:
            raise OptionsError(errors)
        return opts

    def errors(self) -> dict[str, str]:
        errors = {}
        bad = [s for s in self.sources if s not in SOURCES]
        if bad or not self.sources:
            errors["sources"] = f"choose one or more of {', '.join(SOURCES)}"
        if self.aggregation not in AGGREGATIONS:
            errors["aggregation"] = f"must be one of {', '.join(AGGREGATIONS)}"
        for name in ("min_agreement", "sft_min_agreement"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                errors[name] = "must be between 0 and 1"
        if not 0.0 <= self.test_share < 1.0:
            errors["test_share"] = "must be at least 0 and below 1"
        return errors

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _coerce(name: str, value: Any, default: Any) -> Any:
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off", ""):
            return value.lower() in ("true", "1", "yes", "on")
        raise ValueError("must be true or false")
    if isinstance(default, int):
        if isinstance(value, bool):
            raise ValueError("must be an integer")
        return int(value)
    if isinstance(default, float):
        if isinstance(value, bool):
            raise ValueError("must be a number")
        return float(value)
    if isinstance(default, list):
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, (list, tuple)):
            raise ValueError("must be a list")
        return sorted({str(v) for v in value}, key=SOURCES.index if name == "sources" and set(value) <= set(SOURCES) else str)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ValueError("must be a string")
        return value
    return value
