"""Who may read a project's training, and a snapshot that holds several projects (DESIGN.md:
Roles): the rules every training selector builds on. Researchers and managers of a project see
its training; staff see everything."""
from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from annotation.exports.selectors import READER_ROLES, projects_readable, snapshot_readable  # noqa: F401 (snapshot_readable: re-exported)
from annotation.models import Project, Role
from annotation.selectors import project_get_for_user

VIEWER_ROLES = READER_ROLES  # researcher, manager: who may read a project


def projects_viewable(*, user) -> QuerySet[Project]:
    """Projects whose training the user may see (researcher or manager; staff: all): those whose
    data they may read."""
    return projects_readable(user=user)


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
# Starting a run on a snapshot needs the manager role on the snapshot's project and at least the
# researcher role on every project whose data it holds (training.runs.selectors). Reading what it
# holds (a run's results and samples: prompts and responses of every project in it) is
# annotation's one rule for reading a snapshot, the same that guards its files, card and archive:
# snapshot_readable (imported above) is that selector, not a copy of it.
