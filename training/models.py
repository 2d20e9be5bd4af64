from __future__ import annotations

from django.db import models

from annotation.models.snapshot import DatasetSnapshot
from training.lifecycle import LongJob


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


class TrainingRun(LongJob):
    """One training run. The row is the truth; Celery messages only wake workers. Its lifecycle
    (status, claim, heartbeat, cancel, stale recovery) is training/lifecycle.py's; a run adds the
    model it trains from, its step counter, its curve, its log and its checkpoint."""

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="training_runs")
    snapshot = models.ForeignKey("annotation.DatasetSnapshot", on_delete=models.PROTECT, related_name="training_runs")
    base_model = models.ForeignKey(ModelArtifact, on_delete=models.PROTECT, related_name="runs")
    # A method of the recipe registry (training/recipes/registry.py); run_create checks it there.
    method = models.CharField(max_length=16)
    reward_model = models.ForeignKey(
        ModelArtifact, null=True, blank=True, on_delete=models.PROTECT, related_name="scored_runs",
        limit_choices_to={"kind": "reward_model"}, help_text="Online methods (PPO, RLOO, GRPO) score their rollouts with it.",
    )
    use_lora = models.BooleanField(default=True)
    config = models.JSONField(default=dict, blank=True, help_text="Hyperparameters; defaults filled in from the recipe's config dataclass.")

    class Distributed(models.TextChoices):
        DDP = "ddp", "DDP (a full copy of the model per device)"
        FSDP = "fsdp", "FSDP (parameters sharded across devices)"
        ZERO3 = "zero3", "DeepSpeed ZeRO-3 (parameters, gradients and optimizer sharded)"

    # How many training processes (one per GPU; on a CPU-only worker, gloo processes) the gpu
    # worker launches, and how they share the model (training/launcher.py).
    num_processes = models.PositiveSmallIntegerField(default=1, help_text="Training processes: one per device.")
    distributed = models.CharField(max_length=8, choices=Distributed.choices, default=Distributed.DDP)

    device = models.CharField(max_length=100, blank=True)
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=list, blank=True, help_text='[{"step": 10, "loss": 0.6, ...}, ...]')
    log_tail = models.TextField(blank=True)
    checkpoint_path = models.CharField(max_length=500, blank=True)
    result = models.JSONField(default=dict, blank=True, help_text="Final evaluation on the test split.")

    class Meta(LongJob.Meta):
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="run_stale_idx")]

    def __str__(self) -> str:
        return f"{self.method} run {self.pk}"

    def get_method_display(self) -> str:
        """The recipe's label (the registry, not field choices: adding a method touches no model)."""
        from training.recipes.registry import label

        return label(self.method)


class SnapshotForTraining(DatasetSnapshot):
    """Dataset snapshots as the training admin sees them: a proxy (no table) so that Django admin
    can offer 'start training on the selected snapshots' without touching the annotation admin."""

    class Meta:
        proxy = True
        verbose_name = "snapshot to train on"
        verbose_name_plural = "snapshots to train on"


class JudgeJob(LongJob):
    """An AI judge over a project (RLAIF): one registered model answers the project's items like a
    rater. The row is the truth, as for a run: status, heartbeat, cancel flag, progress. Its
    checkpoint is the judgments themselves (one per item, judge and template; unique), so a
    resumed job simply skips the items it has already answered (training/judge/job.py)."""

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="judge_jobs")
    model = models.ForeignKey(ModelArtifact, on_delete=models.PROTECT, related_name="judge_jobs")
    template_name = models.CharField(max_length=40, default="default")
    # The prompt before the item, as the judge saw it (template + instructions + principles), and
    # its key ("name@sha"), which every judgment of this job carries in Judgment.ai_template.
    template_text = models.TextField(blank=True)
    template_key = models.CharField(max_length=80, blank=True)
    config = models.JSONField(default=dict, blank=True, help_text="limit, tie_band, batch_size, max_length.")

    total = models.PositiveIntegerField(default=0, help_text="Items to judge.")
    done = models.PositiveIntegerField(default=0, help_text="Items answered or found answered.")
    stored = models.PositiveIntegerField(default=0, help_text="Judgments this job stored.")
    undecided = models.PositiveIntegerField(default=0, help_text="Items the judge could not decide (an exact split where no tie is allowed).")
    result = models.JSONField(default=dict, blank=True, help_text="Position bias and answer counts.")

    class Meta(LongJob.Meta):
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="judgejob_stale_idx")]

    def __str__(self) -> str:
        return f"judge job {self.pk} ({self.model.name if self.model_id else '?'})"

    @property
    def percent(self) -> float:
        return round(100.0 * self.done / self.total, 1) if self.total else 0.0


from training.job_models import Job  # noqa: E402,F401  (evaluation and generation jobs; own module so merges stay easy)
