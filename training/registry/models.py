"""The registry's row: a model folder in Hugging Face format with its lineage."""
from __future__ import annotations

from django.db import models


class ModelArtifact(models.Model):
    """A model in the registry: a folder in Hugging Face format (safetensors only), with lineage."""

    class Kind(models.TextChoices):
        CAUSAL_LM = "causal_lm", "Causal language model"
        ENCODER = "encoder", "Encoder"
        REWARD_MODEL = "reward_model", "Reward model"
        POLICY = "policy", "Trained policy"

    class Source(models.TextChoices):
        LOCAL = "local", "Local folder"
        HUB = "hub", "Hugging Face hub"
        GGUF = "gguf", "Converted from GGUF"
        TRAINED = "trained", "Trained here"

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    source = models.CharField(max_length=20, choices=Source.choices)
    path = models.CharField(max_length=500, help_text="Folder under ARTIFACT_ROOT (or absolute) in Hugging Face format.")
    is_adapter = models.BooleanField(default=False, help_text="A PEFT adapter on top of base_model.")
    base_model = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="derived")
    run = models.OneToOneField("TrainingRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="output_model")
    snapshot = models.ForeignKey("annotation.DatasetSnapshot", null=True, blank=True, on_delete=models.SET_NULL, related_name="models")
    config = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name
