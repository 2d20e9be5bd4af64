from __future__ import annotations

from django.conf import settings
from django.db import models

from annotation.models.project import Project


class DatasetSnapshot(models.Model):
    """An immutable, versioned export of one or more projects: a folder under ARTIFACT_ROOT
    with manifest.json, README.md and <format>/{train,test}.{jsonl,parquet}.
    The folder becomes visible (path set, status ready) only once it is complete."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        BUILDING = "building"
        READY = "ready"
        FAILED = "failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="snapshots")
    extra_projects = models.ManyToManyField(Project, blank=True, related_name="+")
    version = models.PositiveIntegerField()
    options = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)
    path = models.CharField(max_length=500, blank=True)
    manifest = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Written with the progress while a build runs: a second delivery of the build message leaves
    # a fresh build to its owner and takes over a stale one (annotation/exports/build.py).
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["project", "version"], name="snapshot_unique_version")]

    def __str__(self) -> str:
        return f"{self.project.slug} v{self.version}"
