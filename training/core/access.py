"""Who may read a project's training, and a snapshot that holds several projects (DESIGN.md:
Roles): the rules every training selector builds on. Researchers and managers of a project see
its training; staff see everything."""
from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from annotation.models import DatasetSnapshot, Membership, Project, Role
from annotation.selectors import project_get_for_user

VIEWER_ROLES = (Role.RESEARCHER, Role.MANAGER)


def projects_viewable(*, user) -> QuerySet[Project]:
    """Projects whose training the user may see (researcher or manager; staff: all)."""
    if not user.is_authenticated:
        return Project.objects.none()
    if user.is_staff:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user, memberships__role__in=VIEWER_ROLES).distinct()


def projects_managed(*, user) -> QuerySet[Project]:
    if not user.is_authenticated:
        return Project.objects.none()
    if user.is_staff:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user, memberships__role=Role.MANAGER).distinct()


def row_get_for_user(rows: QuerySet, *, user, pk: int, role: str, what: str, action: str = "this page"):
    """A row of a project (a run, a judge job, an evaluation...), if the user holds `role` on its
    project: Http404 for outsiders and for a row that isn't there, 403 for too low a role."""
    row = rows.select_related("project").filter(pk=pk).first()
    if row is None:
        raise Http404(f"No such {what}")
    project_get_for_user(user=user, slug=row.project.slug, role=role, action=action)
    return row

# --- Snapshots that hold several projects (extra_projects) ------------------------------------
# The one rule: starting a run on a snapshot needs the manager role on the snapshot's project and
# at least the researcher role on every project whose data it holds; a run's results and samples
# (prompts and responses of every project in the snapshot) are shown only to users who may read
# every one of those projects. Staff may do both.


def snapshot_project_ids(snapshot: DatasetSnapshot) -> set[int]:
    return {snapshot.project_id, *snapshot.extra_projects.values_list("pk", flat=True)}


def snapshot_readable(*, user, snapshot: DatasetSnapshot) -> bool:
    """Whether the user may read every project whose data the snapshot holds."""
    if not user.is_authenticated:
        return False
    if user.is_staff:
        return True
    ids = snapshot_project_ids(snapshot)
    readable = Membership.objects.filter(user=user, project_id__in=ids, role__in=VIEWER_ROLES).values("project_id").distinct().count()
    return readable == len(ids)
