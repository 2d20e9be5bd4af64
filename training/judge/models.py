"""The AI judge's job row (the model side of the judge is judges.py)."""
from __future__ import annotations

from django.db import models

from training.registry.models import ModelArtifact
from training.runs.lifecycle import LongJob


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

    task_name = "training.tasks.judge_run"

    class Meta(LongJob.Meta):
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="judgejob_stale_idx")]

    def __str__(self) -> str:
        return f"judge job {self.pk} ({self.model.name if self.model_id else '?'})"

    @property
    def percent(self) -> float:
        return round(100.0 * self.done / self.total, 1) if self.total else 0.0
