"""Project pages: the list, creating a project, the role-aware overview, settings and members.
Thin: parse, get the project through the membership selector, call one service."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import path
from django.views.decorators.http import require_http_methods

from annotation.forms import (
    PREVIEW_FIELDS,
    QUESTION_PRESETS,
    MemberForm,
    ProjectCreateForm,
    ProjectSettingsForm,
    member_choices,
    preview_project,
    preview_questions,
)
from annotation.labelling import preview_context
from annotation.models import Judgment, Membership, Role
from annotation.progress import rater_progress
from annotation.projects import (
    MANAGERS_GROUP,
    membership_remove,
    membership_set,
    project_create,
    project_statistics,
    project_update,
    user_by_username,
    user_can_create_projects,
)
from annotation.selectors import membership_may_label, project_get_for_user, project_list_for_user


@login_required
def project_list(request):
    projects = list(project_list_for_user(user=request.user).order_by("archived", "name"))
    roles = dict(Membership.objects.filter(user=request.user, project__in=projects).values_list("project_id", "role"))
    rows = [{"project": p, "role": roles.get(p.id) or ("staff" if request.user.is_staff else "")} for p in projects]
    return render(request, "annotation/project_list.html", {"rows": rows, "can_create": user_can_create_projects(user=request.user)})


@login_required
@require_http_methods(["GET", "POST"])
def project_new(request):
    if not user_can_create_projects(user=request.user):
        raise PermissionDenied(f"Creating a project needs membership of the {MANAGERS_GROUP!r} group (or staff); ask an administrator.")
    form = ProjectCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        members = {u: Role.RATER for u in form.cleaned_data["raters"]}
        members.update({u: Role.RESEARCHER for u in form.cleaned_data["researchers"]})
        members.pop(request.user, None)  # the creator is a manager
        try:
            project = project_create(created_by=request.user, members=members, **form.settings())
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, f"Created {project.name}.")
            return redirect("annotation:project-detail", slug=project.slug)
    return render(request, "annotation/project_form.html", _form_context(request, form, title="New project", members=True))


def _preview_html(request, query=None, project=None) -> str:
    """What raters will see with these settings: _label_item.html with sample content, the
    questions under each response and in the answer row included (labelling.question_context)."""
    errors: dict = {}
    question_errors: list[str] = []
    if project is None:
        project, errors = preview_project(query or {})
        project.questions, question_errors = preview_questions(query or {})
    context = {"project": project, "preview_errors": errors, "question_errors": question_errors}
    if not errors:
        context.update(preview_context(project=project))
    return render_to_string("annotation/_kind_preview.html", context, request=request)


def _form_context(request, form, *, title: str, project=None, members: bool = False) -> dict:
    # A bound form previews what was posted; a fresh one the saved (or default) settings.
    preview = _preview_html(request, query=form.data) if form.is_bound else _preview_html(request, project=project or form.instance)
    # Once judgments exist, the answered questions' shape is fixed (annotation.projects.question_change_errors).
    answered = [q["key"] for q in project.questions or []] if project and Judgment.objects.filter(project=project).exists() else []
    return {
        "form": form,
        "title": title,
        "project": project,
        "preview_html": preview,
        "preview_fields": " ".join((*PREVIEW_FIELDS, "questions")),
        "member_choices": member_choices() if members else [],
        "question_presets": QUESTION_PRESETS,
        "answered_keys": answered,
        "has_questions": form.asks_questions(),
    }


@login_required
@require_http_methods(["GET", "POST"])
def project_preview(request):
    """The form's live preview (project_form.js asks again on every change of a kind setting or
    a question). Sample content only, so any signed-in user may ask. The script POSTs: a dozen
    questions with their help texts outgrow the request line a proxy or gunicorn accepts."""
    return HttpResponse(_preview_html(request, query=request.POST if request.method == "POST" else request.GET))


@login_required
def project_detail(request, slug: str):
    project, membership = project_get_for_user(user=request.user, slug=slug)
    is_researcher = membership.has_role(Role.RESEARCHER)
    context = {
        "project": project,
        "membership": membership,
        "is_researcher": is_researcher,
        "is_manager": membership.has_role(Role.MANAGER),
        # Researchers judge the raters' data; they are not offered labelling (labelling_project_get).
        "may_label": membership_may_label(membership),
        "progress": rater_progress(project=project, rater=request.user),
        "stats": project_statistics(project=project) if is_researcher else None,
    }
    return render(request, "annotation/project_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def project_settings(request, slug: str):
    project, _ = project_get_for_user(user=request.user, slug=slug, role=Role.MANAGER, action="changing the settings")
    form = ProjectSettingsForm(request.POST or None, instance=project)
    if request.method == "POST" and form.is_valid():
        try:
            project_update(project=project, fields=form.settings())
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, "Settings saved.")
            return redirect("annotation:project-detail", slug=project.slug)
    return render(request, "annotation/project_form.html", _form_context(request, form, title=f"Settings · {project.name}", project=project))


@login_required
@require_http_methods(["GET", "POST"])
def project_members(request, slug: str):
    project, _ = project_get_for_user(user=request.user, slug=slug, role=Role.MANAGER, action="managing members")
    form = MemberForm(request.POST if request.POST.get("action") == "add" else None)
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "add":
                if form.is_valid():
                    membership_set(project=project, user=form.cleaned_data["user"], role=form.cleaned_data["role"])
                    messages.success(request, f"{form.cleaned_data['username']} is now a {form.cleaned_data['role']}.")
                    return redirect("annotation:project-members", slug=project.slug)
            elif action in ("role", "pause", "resume", "remove"):
                user = user_by_username(request.POST.get("username", ""))
                current = Membership.objects.filter(project=project, user=user).first() if user else None
                if current is None:
                    messages.error(request, "username: not a member of this project")
                elif action == "remove":
                    membership_remove(project=project, user=user)
                    messages.success(request, f"Removed {user.username}.")
                elif action == "role":
                    membership_set(project=project, user=user, role=request.POST.get("role", ""))
                    messages.success(request, f"{user.username} is now a {request.POST.get('role')}.")
                else:
                    membership_set(project=project, user=user, role=current.role, paused=action == "pause")
                    messages.success(request, f"{'Paused' if action == 'pause' else 'Resumed'} {user.username}.")
                return redirect("annotation:project-members", slug=project.slug)
        except ValidationError as exc:
            for field, errs in exc.message_dict.items():
                for err in errs:
                    messages.error(request, f"{field}: {err}")
            return redirect("annotation:project-members", slug=project.slug)
    members = Membership.objects.filter(project=project).select_related("user").order_by("-role", "user__username")
    return render(
        request,
        "annotation/project_members.html",
        {"project": project, "members": members, "form": form, "roles": Role.choices, "member_choices": [u for u in member_choices() if u not in {m.user.username for m in members}]},
    )


urlpatterns = [
    path("", project_list, name="project-list"),
    path("projects/new/", project_new, name="project-new"),
    path("projects/new/preview/", project_preview, name="project-preview"),
    path("projects/<slug:slug>/", project_detail, name="project-detail"),
    path("projects/<slug:slug>/settings/", project_settings, name="project-settings"),
    path("projects/<slug:slug>/members/", project_members, name="project-members"),
]
