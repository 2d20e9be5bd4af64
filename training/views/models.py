"""The model registry pages: every model the user may see, with its lineage
(snapshot -> run -> model, and the chain of base models)."""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import path

from training.registry.models import ModelArtifact
from training.registry.services import PATH_SOURCES, SOURCES, RegistryError, model_path, model_register, model_roots
from training.runs.results import display_rows
from training.core.access import projects_viewable
from training.registry.selectors import (
    may_register_from_path,
    may_register_models,
    may_see_models,
    model_get_for_user,
    model_lineage,
    model_list_for_user,
    model_project,
)


class ModelAddForm(forms.Form):
    source = forms.ChoiceField(choices=list(SOURCES.items()), widget=forms.RadioSelect, initial="folder")
    path = forms.CharField(required=False, max_length=1000, help_text="Folder or GGUF file under the model roots; a relative path starts at the first root.")
    name = forms.CharField(required=False, max_length=200, help_text="Registry name (becomes a folder name); not needed for the packaged models.")
    kind = forms.ChoiceField(required=False, choices=[("", "guess from config.json")] + list(ModelArtifact.Kind.choices))

    def __init__(self, *args, from_path: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if not from_path:  # a manager sees only the packaged models
            self.fields["source"].choices = [(key, label) for key, label in SOURCES.items() if key not in PATH_SOURCES]
            self.fields["source"].initial = "smollm2"


@login_required
def model_list(request):
    if not may_see_models(user=request.user):
        raise PermissionDenied("The model registry needs the researcher or manager role on at least one project.")
    models = model_list_for_user(user=request.user)
    return render(request, "training/models.html", {"models": models, "may_add": may_register_models(user=request.user)})


@login_required
def model_add(request):
    """Register a base model (managers and staff; a path, staff only): the same checks and
    messages as add_model, with a path confined to ARBITER_MODEL_ROOTS."""
    if not may_register_models(user=request.user):
        raise PermissionDenied("Only project managers and staff register models")
    from_path = may_register_from_path(user=request.user)
    if request.method == "POST" and request.POST.get("source") in PATH_SOURCES and not from_path:
        raise PermissionDenied("Only staff register a model from a path on the server")
    form = ModelAddForm(request.POST or None, from_path=from_path)
    error = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        before = set(ModelArtifact.objects.values_list("pk", flat=True))
        try:
            artifact = model_register(source=data["source"], name=data["name"], path=data["path"], kind=data["kind"] or None)
        except RegistryError as exc:
            error = str(exc)
        else:
            verb = "was already registered" if artifact.pk in before else "registered"
            messages.success(request, f"{artifact.name} {verb} ({artifact.get_kind_display()}, {artifact.get_source_display()}).")
            return redirect("training:model", pk=artifact.pk)
    context = {"form": form, "error": error, "from_path": from_path, "roots": model_roots() if from_path else []}
    return render(request, "training/model_add.html", context, status=400 if error else 200)


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
    path("models/add/", model_add, name="model-add"),
    path("models/<id:pk>/", model_detail, name="model"),
]
