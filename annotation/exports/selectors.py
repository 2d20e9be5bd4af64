"""Reads of snapshots. Callers have already checked the role with project_get_for_user."""
from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from annotation.models import DatasetSnapshot, Project, Role
from annotation.models.project import ROLE_RANK
from annotation.selectors import project_list_for_user


def snapshot_list(*, project: Project) -> QuerySet[DatasetSnapshot]:
    return DatasetSnapshot.objects.filter(project=project).select_related("project", "created_by").prefetch_related("extra_projects").order_by("-version")


def snapshot_get(*, project: Project, version: int) -> DatasetSnapshot:
    snapshot = snapshot_list(project=project).filter(version=version).first()
    if snapshot is None:
        raise Http404("No such snapshot")
    return snapshot


def projects_for_research(*, user, exclude: Project | None = None) -> list[Project]:
    """Projects the user may combine into a snapshot: those where they are researcher or more
    (staff: all). One query, not a membership lookup per project."""
    projects = project_list_for_user(user=user).order_by("name")
    if exclude is not None:
        projects = projects.exclude(id=exclude.id)
    if not user.is_staff:
        roles = [role for role, rank in ROLE_RANK.items() if rank >= ROLE_RANK[Role.RESEARCHER]]
        projects = projects.filter(memberships__user=user, memberships__role__in=roles)
    return list(projects)
