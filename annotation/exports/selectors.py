"""Reads of snapshots. Callers have already checked the role with project_get_for_user."""
from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from annotation.models import DatasetSnapshot, Project, Role
from annotation.models.project import ROLE_RANK
from annotation.selectors import membership_get, project_list_for_user


def snapshot_list(*, project: Project) -> QuerySet[DatasetSnapshot]:
    return DatasetSnapshot.objects.filter(project=project).select_related("project", "created_by").prefetch_related("extra_projects").order_by("-version")


def snapshot_get(*, project: Project, version: int) -> DatasetSnapshot:
    snapshot = snapshot_list(project=project).filter(version=version).first()
    if snapshot is None:
        raise Http404("No such snapshot")
    return snapshot


def projects_for_research(*, user, exclude: Project | None = None) -> list[Project]:
    """Projects the user may combine into a snapshot: those where they are researcher or more."""
    found = []
    for project in project_list_for_user(user=user).order_by("name"):
        if exclude is not None and project.id == exclude.id:
            continue
        membership = membership_get(user=user, project=project)
        if membership is not None and ROLE_RANK[membership.role] >= ROLE_RANK[Role.RESEARCHER]:
            found.append(project)
    return found
