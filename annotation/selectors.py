"""Reads, scoped by membership in one place (DESIGN.md: Roles).

Every view and API endpoint gets its project through project_get_for_user, so an outsider
never sees data: a project they are not on does not exist for them (404), and a member who
lacks the role gets 403.
"""
from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from annotation import sql
from annotation.models import Assignment, Membership, Project, Role
from annotation.models.project import ROLE_RANK


def project_list_for_user(*, user) -> QuerySet[Project]:
    if not user.is_authenticated:
        return Project.objects.none()
    if user.is_staff:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user).distinct()


def sees_training(*, user) -> bool:
    """Whether the Training pages have anything for the user: staff, or a researcher or manager
    of some project. A rater's Training link led to "No training runs yet" while runs existed."""
    if not user.is_authenticated:
        return False
    return user.is_staff or Membership.objects.filter(user=user, role__in=roles_from(Role.RESEARCHER)).exists()


def membership_get(*, user, project: Project) -> Membership | None:
    """The user's membership; staff act as managers of every project."""
    if not user.is_authenticated:
        return None
    membership = Membership.objects.filter(project=project, user=user).first()
    if user.is_staff and (membership is None or membership.role != Role.MANAGER):
        return Membership(project=project, user=user, role=Role.MANAGER)
    return membership


class RoleRequired(PermissionDenied):
    """A member's role is too low for what they asked. The message names the action, the roles
    that may do it and the project; the 403 page (config.errors) shows it with a link back."""

    def __init__(self, *, project: Project, action: str, roles: list[str]):
        self.project = project
        allowed = " or ".join([", ".join(roles[:-1]), roles[-1]] if len(roles) > 2 else roles)
        super().__init__(f"{action[:1].upper()}{action[1:]} needs the {allowed} role on {project.name}.")


def roles_from(role: str) -> list[str]:
    """The roles that hold at least `role`, lowest first: researcher -> [researcher, manager]."""
    return [r for r in Role.values if ROLE_RANK[r] >= ROLE_RANK[role]]


def project_get_for_user(*, user, slug: str, role: str = Role.RATER, action: str = "this page") -> tuple[Project, Membership]:
    """The project and the user's membership, if the user holds at least `role` on it.

    Raises Http404 for outsiders (they learn nothing, not even that the slug exists) and
    RoleRequired (a PermissionDenied) for members whose role is too low; `action` names what
    they tried in its message ("importing items needs the manager role on Demo binary").
    """
    # One query for the common case (a member): every rater request passes through here.
    membership = _membership_with_project(user_id=user.id, slug=slug) if user.is_authenticated else None
    if membership is not None:
        project = membership.project
        if user.is_staff and membership.role != Role.MANAGER:
            membership = Membership(project=project, user=user, role=Role.MANAGER)
    else:
        project = Project.objects.filter(slug=slug).first() if user.is_authenticated and user.is_staff else None
        if project is None:
            raise Http404("No such project")
        membership = Membership(project=project, user=user, role=Role.MANAGER)
    if ROLE_RANK[membership.role] < ROLE_RANK[role]:
        raise RoleRequired(project=project, action=action, roles=roles_from(role))
    return project, membership


def labelling_project_get(*, user, slug: str) -> tuple[Project, Membership]:
    """The project and membership of a user who may label on it: its raters and managers (and
    staff). Researchers read statistics and datasets but do not label (403): their answers would
    mix into the raters' data and the agreement figures they are there to judge."""
    project, membership = project_get_for_user(user=user, slug=slug, role=Role.RATER, action="labelling")
    if not membership_may_label(membership):
        raise RoleRequired(project=project, action="labelling", roles=[Role.RATER, Role.MANAGER])
    return project, membership


def membership_may_label(membership: Membership | None) -> bool:
    return membership is not None and membership.role in (Role.RATER, Role.MANAGER)


def assignment_get_for_rater(*, user, assignment_id: int, project: Project | None = None) -> Assignment:
    """The caller's own assignment (with its project loaded), on a project they are still on.

    Anybody else's assignment does not exist for the caller (404), exactly like a project they
    are not on; a rater removed from the project can no longer answer (staff may). One query.
    """
    if not user.is_authenticated:
        raise Http404("No such assignment")
    with sql.cursor() as cursor:
        cursor.execute(
            f"SELECT {sql.columns(Assignment, 'a')}, {sql.columns(Project, 'p')},"
            f" EXISTS (SELECT 1 FROM {Membership._meta.db_table} m WHERE m.project_id = a.project_id AND m.user_id = %s)"
            f" FROM {Assignment._meta.db_table} a JOIN {Project._meta.db_table} p ON p.id = a.project_id"
            " WHERE a.id = %s AND a.rater_id = %s",
            [user.id, assignment_id, user.id],
        )
        row = cursor.fetchone()
    if row is None or not (row[-1] or user.is_staff):
        raise Http404("No such assignment")
    assignment, end = sql.instance(Assignment, row)
    assignment.project, _ = sql.instance(Project, row, start=end)
    if project is not None and assignment.project_id != project.id:
        raise Http404("No such assignment")
    return assignment


def _membership_with_project(*, user_id: int, slug: str) -> Membership | None:
    # Hand-written (annotation.sql): this lookup runs on every rater request.
    with sql.cursor() as cursor:
        cursor.execute(
            f"SELECT {sql.columns(Membership, 'm')}, {sql.columns(Project, 'p')}"
            f" FROM {Membership._meta.db_table} m JOIN {Project._meta.db_table} p ON p.id = m.project_id"
            " WHERE p.slug = %s AND m.user_id = %s",
            [slug, user_id],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    membership, end = sql.instance(Membership, row)
    membership.project, _ = sql.instance(Project, row, start=end)
    return membership


def user_role(*, user, project: Project) -> str | None:
    membership = membership_get(user=user, project=project)
    return membership.role if membership else None
