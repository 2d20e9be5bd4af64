from __future__ import annotations

from django.conf import settings
from django.db import models

from annotation.models.snapshot import DatasetSnapshot


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


class TrainingRun(models.Model):
    """One training run. The row is the truth; Celery messages only wake workers."""

    class Method(models.TextChoices):
        REWARD = "reward", "Reward model"
        DPO = "dpo", "DPO"
        KTO = "kto", "KTO"
        SFT = "sft", "SFT"
        RLOO = "rloo", "RLOO"
        GRPO = "grpo", "GRPO"
        PPO = "ppo", "PPO"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="training_runs")
    snapshot = models.ForeignKey("annotation.DatasetSnapshot", on_delete=models.PROTECT, related_name="training_runs")
    base_model = models.ForeignKey(ModelArtifact, on_delete=models.PROTECT, related_name="runs")
    method = models.CharField(max_length=16, choices=Method.choices)
    use_lora = models.BooleanField(default=True)
    config = models.JSONField(default=dict, blank=True, help_text="Hyperparameters; defaults filled in from the recipe's config dataclass.")

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    cancel_requested = models.BooleanField(default=False)
    worker = models.CharField(max_length=200, blank=True)
    device = models.CharField(max_length=100, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    metrics = models.JSONField(default=list, blank=True, help_text='[{"step": 10, "loss": 0.6, ...}, ...]')
    log_tail = models.TextField(blank=True)
    checkpoint_path = models.CharField(max_length=500, blank=True)
    result = models.JSONField(default=dict, blank=True, help_text="Final evaluation on the test split.")
    error = models.TextField(blank=True)

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="run_stale_idx")]

    def __str__(self) -> str:
        return f"{self.method} run {self.pk}"


class SnapshotForTraining(DatasetSnapshot):
    """Dataset snapshots as the training admin sees them: a proxy (no table) so that Django admin
    can offer 'start training on the selected snapshots' without touching the annotation admin."""

    class Meta:
        proxy = True
        verbose_name = "snapshot to train on"
        verbose_name_plural = "snapshots to train on"

from training.job_models import Job  # noqa: E402,F401  (evaluation and generation jobs; own module so merges stay easy)
