"""What annotation asks of the apps above it (DESIGN.md: layers run config → annotation → training).

annotation/ never imports training/. Where it needs something only training knows, it asks one of
these hooks, which training fills when its app starts (training/apps.py). Left empty, annotation
works on its own: "least certain first" cannot be chosen, and a dataset card names no method.
"""
from __future__ import annotations

from typing import Protocol


class UncertaintyScorer(Protocol):
    """The reward model behind "least certain first" (annotation/selection.py): which one a project
    may choose and uses, and the job that scores its pending items into Item.priority. Errors are
    annotation.selection.SelectionError, whose message starts with the field it is about."""

    def model_choices(self, *, project, user) -> list[tuple[int, str]]:
        """(id, name) of the reward models this user may choose for this project."""

    def model_chosen(self, *, project) -> int | None:
        """The chosen model's id; None: the newest reward model trained on the project."""

    def model_effective(self, *, project) -> str | None:
        """The name of the model that scores the project now, or None when there is none."""

    def model_weights(self, *, project) -> dict[str, float]:
        """The stored weights of a multi-objective model's heads ({}: the weights it was saved with)."""

    def model_attributes(self, *, project) -> list[str] | None:
        """The attributes (heads) of the model that scores the project now; None: a single-head
        model, or no model."""

    def model_choose(self, *, project, model_id: int | None, user, weights=None) -> None:
        """Store the choice (None: the newest) and the weights, as given (a dict, or a text
        "helpfulness=1, verbosity=-0.5"; None or empty: the model's own). Raises SelectionError for
        a model this user may not choose for this project ("selection_model: ...") or weights the
        model that will score cannot apply ("selection_weights...: ..."). `user` None: an operator at the shell."""

    def queue(self, *, project_id: int) -> None:
        """Score every pending item of the project on a worker, after this transaction commits."""


uncertainty: UncertaintyScorer | None = None


def format_readers() -> dict[str, list[str]]:
    """Snapshot format -> the labels of the training methods that read it (the dataset card).
    Replaced at start by an app that trains; annotation alone names none."""
    return {}
