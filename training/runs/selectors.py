"""Reads of runs and the snapshots they train on, scoped by project membership (DESIGN.md: Roles).

Runs belong to a project: researchers and managers of it see them, raters get 403 and
outsiders 404 (annotation.selectors.project_get_for_user decides).
"""
from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet

from annotation.models import DatasetSnapshot, Membership, Project, Role
from annotation.selectors import user_role
from training.core.access import VIEWER_ROLES, projects_managed, projects_viewable, row_get_for_user, snapshot_readable
from training.runs.models import TrainingRun

def run_list_for_user(*, user, project: Project | None = None) -> QuerySet[TrainingRun]:
    runs = TrainingRun.objects.select_related("project", "snapshot", "base_model")
    if project is not None:
        return runs.filter(project=project)
    return runs.filter(project__in=projects_viewable(user=user))


def run_get_for_user(*, user, run_id: int, role: str = Role.RESEARCHER, action: str = "this run") -> TrainingRun:
    """The run, if the user holds `role` on its project: Http404 for outsiders, 403 for too low a role."""
    runs = TrainingRun.objects.select_related("snapshot", "base_model", "created_by")
    return row_get_for_user(runs, user=user, pk=run_id, role=role, what="run", action=action)


def snapshot_check_trainable(*, user, snapshot: DatasetSnapshot) -> None:
    """Raises PermissionDenied naming the project the user lacks a role on."""
    if user.is_staff:
        return
    if user_role(user=user, project=snapshot.project) != Role.MANAGER:
        raise PermissionDenied(f"snapshot: starting a run on {snapshot} needs the manager role on {snapshot.project.name}")
    roles = dict(Membership.objects.filter(user=user, project__in=snapshot.extra_projects.all()).values_list("project_id", "role"))
    for project in snapshot.extra_projects.order_by("name"):
        if roles.get(project.pk) not in VIEWER_ROLES:
            raise PermissionDenied(f"snapshot: {snapshot} holds the data of {project.name}, where starting a run needs at least the researcher role")


def snapshots_trainable(*, user) -> QuerySet[DatasetSnapshot]:
    """Snapshots the user may start a run on (the same rule as snapshot_check_trainable, as a query)."""
    snapshots = DatasetSnapshot.objects.all()
    if user.is_staff:
        return snapshots
    unreadable = Project.objects.exclude(pk__in=projects_viewable(user=user).values("pk"))
    return snapshots.filter(project__in=projects_managed(user=user)).exclude(extra_projects__in=unreadable)


def run_results_visible(*, user, run: TrainingRun) -> bool:
    """Results and samples of a run: for users who may read every project in its snapshot."""
    return snapshot_readable(user=user, snapshot=run.snapshot)


def can_manage_run(*, user, run: TrainingRun) -> bool:
    return user_role(user=user, project=run.project) == Role.MANAGER
