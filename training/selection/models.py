"""The reward model a project chose for "least certain first" (annotation/selection.py), and the
weights that combine a multi-objective model's heads. No row, or a row without a model: the newest
reward model trained on a snapshot of the project. Deleting the model deletes the choice (and its
weights, which named that model's heads), which falls back to the newest, as the old foreign key's
SET_NULL did."""
from __future__ import annotations

from django.db import models

from training.registry.models import ModelArtifact


class SelectionChoice(models.Model):
    project = models.OneToOneField("annotation.Project", on_delete=models.CASCADE, related_name="selection_choice")
    model = models.ForeignKey(
        ModelArtifact, on_delete=models.CASCADE, related_name="+", null=True, blank=True,
        help_text="Reward model that scores pending items for 'least certain first' (empty: the newest of the project).",
    )
    # A row without a model exists only to keep weights for "the newest": weights of the newest
    # model are checked against it when chosen, and again by the job (a newer model may lack a head).
    weights = models.JSONField(
        default=dict, blank=True,
        help_text="How a multi-objective reward model's heads combine, {attribute: weight} ({}: the weights it was saved with).",
    )

    def __str__(self) -> str:
        return f"{self.project_id}: {self.model_id or 'newest'}"
