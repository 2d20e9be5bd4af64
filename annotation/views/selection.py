"""The next-item order of a project, in the browser (annotation/selection.py).

GET  /projects/<slug>/selection/           researchers and managers: the setting and the last scoring job
POST /projects/<slug>/selection/           managers: selection, selection_model, selection_weights; or action=refresh
"""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_http_methods

from annotation import hooks
from annotation.models import Project, Role
from annotation.selection import SelectionError, priorities_refresh, selection_set
from annotation.selectors import project_get_for_user


@login_required
@require_http_methods(["GET", "POST"])
def selection_page(request: HttpRequest, slug: str) -> HttpResponse:
    project, membership = project_get_for_user(user=request.user, slug=slug, role=Role.RESEARCHER)
    if request.method == "POST":
        project, membership = project_get_for_user(user=request.user, slug=slug, role=Role.MANAGER)
        try:
            if request.POST.get("action") == "refresh":
                if not priorities_refresh(project=project, reason="asked for"):
                    raise SelectionError("selection: the project does not order by a reward model's uncertainty")
                messages.success(request, "Scoring queued on the gpu worker.")
            else:
                model_id = request.POST.get("selection_model") or ""
                if model_id and not (model_id.isdigit() and len(model_id) < 19):
                    raise SelectionError("selection_model: no such reward model")
                selection_set(project=project, selection=request.POST.get("selection", ""), model_id=int(model_id) if model_id else None,
                              weights=request.POST.get("selection_weights", ""), user=request.user)
                messages.success(request, f"Next items: {project.get_selection_display().lower()}.")
        except SelectionError as exc:
            field, _, message = str(exc).partition(": ")
            # The weights' errors name their entry ("selection_weights.verbosity"): say which, in words.
            messages.error(request, f"Weights ({field}): {message}" if field.startswith("selection_weights") else message or str(exc))
        return redirect(reverse("annotation:project-selection", kwargs={"slug": project.slug}))
    scorer = hooks.uncertainty
    return render(
        request,
        "annotation/selection.html",
        {
            "project": project,
            "membership": membership,
            "is_manager": membership.has_role(Role.MANAGER),
            "choices": Project.Selection.choices,
            "models": scorer.model_choices(project=project, user=request.user) if scorer else [],
            "chosen_model": scorer.model_chosen(project=project) if scorer else None,
            "effective_model": scorer.model_effective(project=project) if scorer else None,
            "attributes": scorer.model_attributes(project=project) if scorer else None,
            "weights_text": _weights_text(scorer.model_weights(project=project) if scorer else {}),
            "status": project.selection_status or {},
        },
    )


def _weights_text(weights: dict) -> str:
    # The form's syntax, as the person typed it ("helpfulness=1, verbosity=-0.5").
    return ", ".join(f"{name}={value:g}" for name, value in (weights or {}).items())


urlpatterns = [path("projects/<slug:slug>/selection/", selection_page, name="project-selection")]
