"""The model registry pages: every model the user may see, with its lineage
(snapshot -> run -> model, and the chain of base models)."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.urls import path

from training.registry import model_path
from training.selectors import may_see_models, model_get_for_user, model_lineage, model_list_for_user, model_project, projects_viewable
from training.views.runs import display_rows


@login_required
def model_list(request):
    if not may_see_models(user=request.user):
        raise PermissionDenied("The model registry needs the researcher or manager role on at least one project.")
    models = model_list_for_user(user=request.user)
    return render(request, "training/models.html", {"models": models})


@login_required
def model_detail(request, pk: int):
    artifact = model_get_for_user(user=request.user, model_id=pk)
    context = {
        "model": artifact,
        "project": model_project(artifact),
        "lineage": model_lineage(artifact),
        "folder": model_path(artifact),
        "config_rows": sorted((k, v) for k, v in (artifact.config or {}).items()),
        "metric_rows": display_rows(artifact.metrics or {}),
        "runs": artifact.runs.select_related("project").filter(project__in=projects_viewable(user=request.user)),
    }
    return render(request, "training/model_detail.html", context)


urlpatterns = [
    path("models/", model_list, name="models"),
    path("models/<id:pk>/", model_detail, name="model"),
]
