"""Reads, scoped by membership in one place (DESIGN.md: Roles).

Every view and API endpoint gets its project through project_get_for_user, so an outsider
never sees data: a project they are not on does not exist for them (404), and a member who
lacks the role gets 403.
"""
from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from annotation.models import Membership, Project, Role
from annotation.models.project import ROLE_RANK


def project_list_for_user(*, user) -> QuerySet[Project]:
    if not user.is_authenticated:
        return Project.objects.none()
    if user.is_staff:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user).distinct()


def membership_get(*, user, project: Project) -> Membership | None:
    """The user's membership; staff act as managers of every project."""
    if not user.is_authenticated:
        return None
    membership = Membership.objects.filter(project=project, user=user).first()
    if user.is_staff and (membership is None or membership.role != Role.MANAGER):
        return Membership(project=project, user=user, role=Role.MANAGER)
    return membership


def project_get_for_user(*, user, slug: str, role: str = Role.RATER) -> tuple[Project, Membership]:
    """The project and the user's membership, if the user holds at least `role` on it.

    Raises Http404 for outsiders (they learn nothing, not even that the slug exists) and
    PermissionDenied for members whose role is too low.
    """
    # One query for the common case (a member): every rater request passes through here.
    membership = None
    if user.is_authenticated:
        membership = Membership.objects.select_related("project").filter(project__slug=slug, user=user).first()
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
        raise PermissionDenied(f"This needs the {role} role on {project.name}")
    return project, membership


def user_role(*, user, project: Project) -> str | None:
    membership = membership_get(user=user, project=project)
    return membership.role if membership else None
