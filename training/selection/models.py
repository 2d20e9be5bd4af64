"""The reward model a project chose for "least certain first" (annotation/selection.py). No row:
the newest reward model trained on a snapshot of the project. Deleting the model deletes the
choice, which falls back to the newest, as the old foreign key's SET_NULL did."""
from __future__ import annotations

from django.db import models

from training.registry.models import ModelArtifact


class SelectionChoice(models.Model):
    project = models.OneToOneField("annotation.Project", on_delete=models.CASCADE, related_name="selection_choice")
    model = models.ForeignKey(
        ModelArtifact, on_delete=models.CASCADE, related_name="+",
        help_text="Reward model that scores pending items for 'least certain first'.",
    )

    def __str__(self) -> str:
        return f"{self.project_id}: {self.model_id}"
