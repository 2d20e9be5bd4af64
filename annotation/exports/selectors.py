"""Reads of snapshots. Callers have already checked the role on the snapshot's own project with
project_get_for_user; what a snapshot holds is read through snapshot_get_readable.

The one rule for a snapshot that holds several projects (DESIGN.md: Roles): its content (files,
archive, card, manifest) is readable only by a user who may read every project inside it, that
is who is researcher or manager of each (staff: all). Anyone who may see the project's datasets
still sees that the snapshot exists. training (runs, results, samples) asks the same functions.
"""
from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, QuerySet
from django.http import Http404

from annotation.models import DatasetSnapshot, Project, Role
from annotation.selectors import roles_from

READER_ROLES = tuple(roles_from(Role.RESEARCHER))


class SnapshotUnreadable(PermissionDenied):
    """A snapshot holds the data of projects the user may not read. The message names them (the
    snapshot's list entry already does) and the 403 page links back to the snapshot's project."""

    def __init__(self, *, snapshot: DatasetSnapshot, hidden: list[Project]):
        self.project = snapshot.project
        names = ", ".join(p.name for p in hidden)
        super().__init__(f"{snapshot.project.slug} v{snapshot.version} holds the data of {names}, which you may not read "
                         "(it needs the researcher or manager role there): its files, card and archive are not shown to you.")


def projects_readable(*, user) -> QuerySet[Project]:
    """Projects whose snapshots, statistics and training the user may read: researcher or manager
    (staff: all)."""
    if not user.is_authenticated:
        return Project.objects.none()
    if user.is_staff:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user, memberships__role__in=READER_ROLES).distinct()


def snapshots_readable(*, user) -> QuerySet[DatasetSnapshot]:
    """Snapshots every project of which the user may read: the rule, as one query."""
    if not user.is_authenticated:
        return DatasetSnapshot.objects.none()
    if user.is_staff:
        return DatasetSnapshot.objects.all()
    readable = projects_readable(user=user).values("pk")
    # exclude() over the many-to-many: no extra project outside the readable ones.
    return DatasetSnapshot.objects.filter(project__in=readable).exclude(extra_projects__in=Project.objects.exclude(pk__in=readable))


def snapshot_readable(*, user, snapshot: DatasetSnapshot) -> bool:
    return snapshots_readable(user=user).filter(pk=snapshot.pk).exists()


def snapshot_list(*, project: Project, user=None) -> QuerySet[DatasetSnapshot]:
    """The project's snapshots, newest first; with a user, each carries `readable` (whether they
    may read its content), so a list can leave out the links it would refuse."""
    snapshots = DatasetSnapshot.objects.filter(project=project).select_related("project", "created_by").prefetch_related("extra_projects").order_by("-version")
    if user is not None:
        snapshots = snapshots.annotate(readable=Exists(snapshots_readable(user=user).filter(pk=OuterRef("pk"))))
    return snapshots


def snapshot_get(*, project: Project, version: int) -> DatasetSnapshot:
    """The snapshot as a row (status, progress): no check of what it holds."""
    snapshot = snapshot_list(project=project).filter(version=version).first()
    if snapshot is None:
        raise Http404("No such snapshot")
    return snapshot


def snapshot_check_readable(*, user, snapshot: DatasetSnapshot) -> None:
    """SnapshotUnreadable (a 403) naming the projects inside the snapshot the user may not read."""
    if not snapshot_readable(user=user, snapshot=snapshot):
        readable = set(projects_readable(user=user).values_list("pk", flat=True))
        everyone = [snapshot.project, *snapshot.extra_projects.order_by("name")]
        raise SnapshotUnreadable(snapshot=snapshot, hidden=[p for p in everyone if p.pk not in readable])


def snapshot_get_readable(*, user, project: Project, version: int) -> DatasetSnapshot:
    """The snapshot, to serve what it holds (files, archive, card, manifest)."""
    snapshot = snapshot_get(project=project, version=version)
    snapshot_check_readable(user=user, snapshot=snapshot)
    return snapshot


def projects_for_research(*, user, exclude: Project | None = None) -> list[Project]:
    """Projects the user may combine into a snapshot: those they may read (staff: all). One
    query, not a membership lookup per project."""
    projects = projects_readable(user=user).order_by("name")
    if exclude is not None:
        projects = projects.exclude(id=exclude.id)
    return list(projects)
