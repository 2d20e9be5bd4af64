"""Jobs that use a policy without training it: an evaluation against a reference, or a generation
batch sent to raters. Like a TrainingRun, the row is the truth (DESIGN.md): a Celery message only
wakes a gpu worker, which claims the row with a conditional UPDATE, writes progress and a
heartbeat on it, stops when `cancel_requested` is set, and records `result` or `error`."""
from __future__ import annotations

from django.conf import settings
from django.db import models


class Job(models.Model):
    class Kind(models.TextChoices):
        EVALUATION = "evaluation", "Policy evaluation"
        GENERATION = "generation", "Generation batch"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    # The page the job belongs to: the policy evaluated, or the first policy of a batch.
    policy = models.ForeignKey("training.ModelArtifact", on_delete=models.CASCADE, related_name="jobs")
    # Evaluation: the project whose snapshot holds the prompts. Generation: the target project.
    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="training_jobs")
    run = models.ForeignKey("training.TrainingRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs",
                            help_text="The policy run that asked for this job at its end, if any.")
    params = models.JSONField(default=dict, blank=True, help_text="What to do: models, prompts source, sampling settings.")

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    cancel_requested = models.BooleanField(default=False)
    worker = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    import_batch = models.ForeignKey("annotation.ImportBatch", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "training"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display().lower()} {self.pk}"

    @property
    def progress(self) -> float:
        return self.done / self.total if self.total else 0.0
