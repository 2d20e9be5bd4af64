"""Jobs that use a policy without training it: an evaluation against a reference, or a generation
batch sent to raters. Like a TrainingRun, the row is the truth (DESIGN.md): a Celery message only
wakes a gpu worker, which claims the row with a conditional UPDATE, writes progress and a
heartbeat on it, stops when `cancel_requested` is set, and records `result` or `error`: the
lifecycle of training/runs/lifecycle.py.

Unlike a run or a judge job it has no index on (status, heartbeat_at): adding one would take a
migration, and the stale check reads few rows of a small table."""
from __future__ import annotations

from django.db import models

from training.runs.lifecycle import LongJob


class Job(LongJob):
    class Kind(models.TextChoices):
        EVALUATION = "evaluation", "Policy evaluation"
        GENERATION = "generation", "Generation batch"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    # The page the job belongs to: the policy evaluated, or the first policy of a batch.
    policy = models.ForeignKey("training.ModelArtifact", on_delete=models.CASCADE, related_name="jobs")
    # Evaluation: the project whose snapshot holds the prompts. Generation: the target project.
    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="training_jobs")
    run = models.ForeignKey("training.TrainingRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs",
                            help_text="The policy run that asked for this job at its end, if any.")
    params = models.JSONField(default=dict, blank=True, help_text="What to do: models, prompts source, sampling settings.")

    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    import_batch = models.ForeignKey("annotation.ImportBatch", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    task_name = "training.tasks.run_job"
    unit = "steps"

    class Meta(LongJob.Meta):
        app_label = "training"

    def __str__(self) -> str:
        return f"{self.get_kind_display().lower()} {self.pk}"

    @property
    def progress(self) -> float:
        return self.done / self.total if self.total else 0.0
