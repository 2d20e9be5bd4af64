"""A training run's row, and the snapshot proxy the training admin starts runs from."""
from __future__ import annotations

from django.db import models

from annotation.models.snapshot import DatasetSnapshot
from training.registry.models import ModelArtifact
from training.runs.lifecycle import LongJob


class TrainingRun(LongJob):
    """One training run. The row is the truth; Celery messages only wake workers. Its lifecycle
    (status, claim, heartbeat, cancel, stale recovery) is training/runs/lifecycle.py's; a run adds the
    model it trains from, its step counter, its curve, its log and its checkpoint."""

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="training_runs")
    snapshot = models.ForeignKey("annotation.DatasetSnapshot", on_delete=models.PROTECT, related_name="training_runs")
    base_model = models.ForeignKey(ModelArtifact, on_delete=models.PROTECT, related_name="runs")
    # A method of the recipe registry (training/recipes/catalog.py); run_create checks it there.
    method = models.CharField(max_length=16)
    reward_model = models.ForeignKey(
        ModelArtifact, null=True, blank=True, on_delete=models.PROTECT, related_name="scored_runs",
        limit_choices_to={"kind": "reward_model"}, help_text="Online methods (PPO, RLOO, GRPO) score their rollouts with it.",
    )
    use_lora = models.BooleanField(default=True)
    # On by default, as before: the evaluation runs on the `jobs` queue, so it no longer holds up
    # the next training run, and its win rate is the figure the loop reads. Off for a quick try.
    evaluate_after = models.BooleanField(
        default=True, help_text="A policy run queues an evaluation against its base model when it finishes (offline methods).",
    )
    config = models.JSONField(default=dict, blank=True, help_text="Hyperparameters; defaults filled in from the recipe's config dataclass.")

    class Distributed(models.TextChoices):
        DDP = "ddp", "DDP (a full copy of the model per device)"
        FSDP = "fsdp", "FSDP (parameters sharded across devices)"
        ZERO3 = "zero3", "DeepSpeed ZeRO-3 (parameters, gradients and optimizer sharded)"

    # How many training processes (one per GPU; on a CPU-only worker, gloo processes) the gpu
    # worker launches, and how they share the model (training/runs/launcher.py).
    num_processes = models.PositiveSmallIntegerField(default=1, help_text="Training processes: one per device.")
    distributed = models.CharField(max_length=8, choices=Distributed.choices, default=Distributed.DDP)

    device = models.CharField(max_length=100, blank=True)
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=list, blank=True, help_text='[{"step": 10, "loss": 0.6, ...}, ...]')
    log_tail = models.TextField(blank=True)
    checkpoint_path = models.CharField(max_length=500, blank=True)
    result = models.JSONField(default=dict, blank=True, help_text="Final evaluation on the test split.")

    task_name = "training.tasks.run_training"
    done_field, total_field, unit = "step", "total_steps", "steps"

    class Meta(LongJob.Meta):
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="run_stale_idx")]

    def __str__(self) -> str:
        return f"{self.method} run {self.pk}"

    def get_method_display(self) -> str:
        """The recipe's label (the registry, not field choices: adding a method touches no model)."""
        from training.recipes.catalog import label

        return label(self.method)


class SnapshotForTraining(DatasetSnapshot):
    """Dataset snapshots as the training admin sees them: a proxy (no table) so that Django admin
    can offer 'start training on the selected snapshots' without touching the annotation admin."""

    class Meta:
        proxy = True
        verbose_name = "snapshot to train on"
        verbose_name_plural = "snapshots to train on"
