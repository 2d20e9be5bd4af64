from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotation.models.item import Item
from annotation.models.project import Project
from config.jsonlimits import ScrubbingDecoder


class Assignment(models.Model):
    """A lease: one rater holds one item until expires_at. One row per (item, rater), ever,
    which is how 'a rater never sees an item twice' is enforced by the database."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        SUBMITTED = "submitted"
        SKIPPED = "skipped"
        EXPIRED = "expired"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="assignments")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="assignments")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    # Candidate positions in the order they are shown on screen (randomised per assignment).
    display_order = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    is_gold = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "rater"], name="assignment_unique_item_rater")]
        indexes = [
            models.Index(fields=["project", "status", "expires_at"], name="assignment_expiry_idx"),
            models.Index(fields=["rater", "project", "status"], name="assignment_rater_idx"),
        ]


class Judgment(models.Model):
    class Source(models.TextChoices):
        HUMAN = "human"
        AI = "ai"
        IMPORT = "import"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="judgments")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="judgments")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="judgments")
    assignment = models.OneToOneField(Assignment, null=True, blank=True, on_delete=models.SET_NULL, related_name="judgment")
    kind = models.CharField(max_length=16)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.HUMAN)
    # The answer in canonical form (annotation.kinds): candidates by position, never by screen side.
    value = models.JSONField(decoder=ScrubbingDecoder)
    # Answers to the project's other questions (annotation.questions), by candidate position.
    answers = models.JSONField(decoder=ScrubbingDecoder, default=dict, blank=True)
    display_order = models.JSONField(default=list, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    rationale = models.TextField(blank=True)
    flags = models.JSONField(decoder=ScrubbingDecoder, default=list, blank=True)
    # Idempotency: a retried submit with the same key stores nothing new.
    client_key = models.CharField(max_length=64, blank=True)
    # For AI feedback: which model judged.
    ai_model = models.CharField(max_length=200, blank=True)
    # For AI feedback: which prompt template ("name@hash" of the full prompt text before the item:
    # template, instructions, principles), so agreement can be measured per template.
    ai_template = models.CharField(max_length=80, blank=True)
    # For gold items: whether the answer matched the expected one.
    gold_correct = models.BooleanField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # My work: a rater may change their answer within the project's edit window. This row
    # always holds the latest version (what snapshots use); earlier ones are JudgmentRevision rows.
    version = models.PositiveSmallIntegerField(default=1)
    changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "rater"], condition=Q(source="human"), name="judgment_unique_human_item_rater"),
            models.UniqueConstraint(fields=["rater", "client_key"], condition=~Q(client_key=""), name="judgment_unique_client_key"),
            # One answer per item from one judge with one template: a resumed judge job skips what is stored.
            models.UniqueConstraint(fields=["item", "ai_model", "ai_template"], condition=Q(source="ai"), name="judgment_unique_ai_item_judge"),
        ]
        indexes = [
            models.Index(fields=["project", "id"], name="judgment_project_idx"),
            models.Index(fields=["rater", "project", "created_at"], name="judgment_rater_idx"),
            models.Index(fields=["item", "source"], name="judgment_item_idx"),
        ]


class JudgmentRevision(models.Model):
    """An earlier version of a judgment, kept when the rater changed it (the raw `judgments`
    export lists it beside the latest version)."""

    judgment = models.ForeignKey(Judgment, on_delete=models.CASCADE, related_name="revisions")
    version = models.PositiveSmallIntegerField()
    # Read through the same decoder as Judgment.value (and written scrubbed, my_work.revision_of).
    value = models.JSONField(decoder=ScrubbingDecoder)
    answers = models.JSONField(decoder=ScrubbingDecoder, default=dict, blank=True)
    rationale = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # When this version was given, and when it was replaced.
    given_at = models.DateTimeField()
    replaced_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["judgment_id", "version"]
        constraints = [models.UniqueConstraint(fields=["judgment", "version"], name="judgment_revision_unique_version")]


class Demonstration(models.Model):
    """A response a rater wrote for an item (SFT data): from scratch, or by rewriting a
    candidate, whose position and text at the time are kept beside the rewrite."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="demonstration_set")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="demonstrations")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="demonstrations")
    text = models.TextField()
    # None: written from scratch. Otherwise the candidate that was rewritten, and its text then.
    source_position = models.PositiveSmallIntegerField(null=True, blank=True)
    source_text = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "rater"], name="demonstration_unique_item_rater")]
        indexes = [models.Index(fields=["project", "item"], name="demonstration_project_idx")]

    @property
    def is_rewrite(self) -> bool:
        return self.source_position is not None


class Adjudication(models.Model):
    """A manager's final answer for an item whose raters disagreed; snapshots may use it in
    place of the raters' consensus."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="adjudications")
    item = models.OneToOneField(Item, on_delete=models.CASCADE, related_name="adjudication")
    # Canonical value of the project's kind (annotation.kinds).
    value = models.JSONField()
    note = models.TextField(blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(auto_now=True)
