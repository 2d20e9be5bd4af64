"""Where a job's prompts come from: a snapshot's split, or a project's items. Stored in the job's
params as ids, resolved again on the worker (so a retried job reads the same prompts)."""
from __future__ import annotations

from annotation.models import DatasetSnapshot, Project
from training.generation import GenerationError, prompts_from_project, prompts_from_snapshot
from training.paths import artifact_path


def prompt_source(*, snapshot: DatasetSnapshot | None = None, project: Project | None = None, split: str = "test") -> dict:
    """Validated params for a prompt source; exactly one of snapshot or project."""
    if (snapshot is None) == (project is None):
        raise GenerationError("prompts: give a snapshot or a project of prompts, not both or neither")
    if snapshot is not None:
        if snapshot.status != DatasetSnapshot.Status.READY or not snapshot.path:
            raise GenerationError(f"prompts: snapshot {snapshot} is not ready (status {snapshot.status})")
        if split not in ("train", "test"):
            raise GenerationError(f"split: {split!r} is not train or test")
        return {"snapshot": snapshot.pk, "split": split, "label": f"{snapshot.project.slug} v{snapshot.version} {split} split"}
    return {"project": project.pk, "label": f"items of {project.slug}"}


def prompts_load(source: dict, *, limit: int | None = None) -> list:
    if "snapshot" in source:
        snapshot = DatasetSnapshot.objects.get(pk=source["snapshot"])
        return prompts_from_snapshot(folder=artifact_path(snapshot.path), split=source.get("split", "test"), limit=limit)
    return prompts_from_project(project=Project.objects.get(pk=source["project"]), limit=limit)
