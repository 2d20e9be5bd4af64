"""Where a job's prompts come from: a snapshot's split, or a project's items. Stored in the job's
params as ids, resolved again on the worker (so a retried job reads the same prompts)."""
from __future__ import annotations

from annotation.models import DatasetSnapshot, Project
from training.loop.generation import GenerationError, prompts_from_project, prompts_from_snapshot
from training.core.paths import artifact_path


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


def prompts_parse(value: str, *, user=None) -> tuple[DatasetSnapshot | None, Project | None]:
    """'SLUG:vN' or 'SLUG:latest' -> that snapshot; 'SLUG' -> the project's items. With a user,
    only projects they may read as a researcher (outsiders: 404, raters: 403)."""
    from annotation.models import Role
    from annotation.selectors import project_get_for_user

    slug, _, version = str(value or "").strip().partition(":")
    if not slug:
        raise GenerationError("prompts: write SLUG:vN or SLUG:latest (a snapshot's split) or SLUG (a project's items)")
    if user is not None:
        project, _ = project_get_for_user(user=user, slug=slug, role=Role.RESEARCHER)
    else:
        project = Project.objects.filter(slug=slug).first()
        if project is None:
            raise GenerationError(f"prompts: no project {slug!r}")
    if not version:
        return None, project
    snapshots = DatasetSnapshot.objects.filter(project=project, status=DatasetSnapshot.Status.READY).select_related("project")
    number = version.lstrip("v")
    if version == "latest":
        snapshot = snapshots.order_by("-version").first()
    else:
        snapshot = snapshots.filter(version=int(number)).first() if number.isdigit() and len(number) <= 9 else None
    if snapshot is None:
        raise GenerationError(f"prompts: project {slug} has no ready snapshot {version!r} (write SLUG:vN or SLUG:latest)")
    if user is not None:
        # Its prompts end up in a job's samples, or as items of the target project: the snapshot's
        # read rule (every project inside it) applies as to a download.
        from annotation.exports.selectors import snapshot_check_readable

        snapshot_check_readable(user=user, snapshot=snapshot)
    return snapshot, None
