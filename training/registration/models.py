"""The row of a model registration (see the package docstring)."""
from __future__ import annotations

from django.db import models

from training.registry.models import ModelArtifact
from training.runs.lifecycle import LongJob


class RegistrationJob(LongJob):
    """One registration asked for in the browser. The row is the truth, as for a run: a worker
    claims it, records its phase (converting, saving) and ends with the model or the error."""

    name = models.CharField(max_length=200, help_text="The registry name the model will have.")
    source = models.CharField(max_length=16, help_text="folder, gguf, smollm2 or minilm (training.registry.services.SOURCES).")
    path = models.CharField(max_length=1000, blank=True, help_text="The resolved path under ARBITER_MODEL_ROOTS, for folder and gguf.")
    kind = models.CharField(max_length=20, blank=True)
    model = models.ForeignKey(ModelArtifact, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    task_name = "training.tasks.model_register"

    class Meta(LongJob.Meta):
        app_label = "training"
        indexes = [models.Index(fields=["name", "status"], name="registration_name_idx")]

    def __str__(self) -> str:
        return f"registration of {self.name}"
