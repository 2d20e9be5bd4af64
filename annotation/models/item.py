from __future__ import annotations

from django.conf import settings
from django.db import models

from annotation.models.project import Project
from config.jsonlimits import ScrubbingDecoder


class ImportBatch(models.Model):
    """One import of one file (or one API payload): what came in, and what went wrong."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="imports")
    filename = models.CharField(max_length=300, blank=True)
    path = models.CharField(max_length=500, blank=True, help_text="Uploaded file waiting for the import task.")
    format = models.CharField(max_length=20, blank=True)
    as_judgments = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    lines_read = models.PositiveIntegerField(default=0)
    items_created = models.PositiveIntegerField(default=0)
    items_skipped = models.PositiveIntegerField(default=0, help_text="Ids already in the project.")
    judgments_created = models.PositiveIntegerField(default=0)
    # A failed import: why nothing went in. A succeeded one with skip_invalid: every bad line
    # that was left out (all of them, so nothing is lost), while the good lines went in.
    errors = models.JSONField(default=list, blank=True, help_text='[{"line": 12, "field": "responses", "message": "..."}]')
    skip_invalid = models.BooleanField(default=False, help_text="Import the good lines and list the bad ones instead of refusing the file.")
    lines_invalid = models.PositiveIntegerField(default=0, help_text="Bad lines left out (skip_invalid).")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Who runs it ("host:pid") and how many times a process took it up: a process that died
    # mid-import leaves the row running; annotation/importers/liveness.py finds out and
    # queues it again (the import is one transaction, so nothing of it was stored).
    worker = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "import batches"


class Item(models.Model):
    """A prompt (text, or a list of chat messages) with its candidate responses."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="items")
    external_id = models.CharField(max_length=200)
    # A string, or [{"role": ..., "content": ...}, ...] for a chat prompt.
    prompt = models.JSONField(decoder=ScrubbingDecoder)
    metadata = models.JSONField(decoder=ScrubbingDecoder, default=dict, blank=True)
    # Gold items carry their expected answer, in the judgment value format of the project's kind.
    gold = models.JSONField(decoder=ScrubbingDecoder, null=True, blank=True)
    is_gold = models.BooleanField(default=False)
    # Denormalised counters that make next-item selection an index range scan:
    # judgment_count = human judgments stored; taken = judgments + live leases.
    judgment_count = models.PositiveIntegerField(default=0)
    taken = models.PositiveIntegerField(default=0)
    # Order among items with equally many judgments and leases, lowest first (annotation/selection.py):
    # 0 for "fewest judgments first", a random number for "random", the reward model's
    # margin between the candidates for "most uncertain first". Stored, so the claim stays an
    # index range scan on item_next_idx.
    priority = models.FloatField(default=0.0)
    import_batch = models.ForeignKey(ImportBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="items")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "external_id"], name="item_unique_external_id")]
        indexes = [models.Index(fields=["project", "is_gold", "taken", "priority", "id"], name="item_next_idx")]

    def __str__(self) -> str:
        return self.external_id

    @property
    def is_chat(self) -> bool:
        return isinstance(self.prompt, list)


class Candidate(models.Model):
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="candidates")
    # The order the candidate came in (0-based). Judgment values refer to candidates by position.
    position = models.PositiveSmallIntegerField()
    text = models.TextField()
    model_name = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(decoder=ScrubbingDecoder, default=dict, blank=True)

    class Meta:
        ordering = ["item_id", "position"]
        constraints = [models.UniqueConstraint(fields=["item", "position"], name="candidate_unique_position")]

    def __str__(self) -> str:
        return f"{self.item_id}#{self.position}"
