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
from training.registration.models import RegistrationJob
from training.registration.selectors import registration_get_for_user, registrations_active_for_user
from training.registration.services import RegistrationInProgress, registration_start
from training.registry.services import PATH_SOURCES, SOURCES, RegistryError, model_path, model_roots
from training.runs.jobstate import job_state
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
    may_add = may_register_models(user=request.user)
    registering = [(job, job_state(job)) for job in registrations_active_for_user(user=request.user)] if may_add else []
    return render(request, "training/models.html", {"models": models, "may_add": may_add, "registering": registering})


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
        # A job on the `jobs` queue (converting a GGUF takes about a minute): the request returns at once.
        try:
            started = registration_start(source=data["source"], name=data["name"], path=data["path"], kind=data["kind"] or None,
                                         created_by=request.user)
        except RegistrationInProgress as exc:
            # A retry while it converts: say what is happening and show its progress.
            messages.info(request, str(exc))
            return redirect("training:registration", pk=exc.job.pk)
        except RegistryError as exc:
            error = str(exc)
        else:
            if isinstance(started, ModelArtifact):
                messages.success(request, f"{started.name} was already registered ({started.get_kind_display()}, {started.get_source_display()}).")
                return redirect("training:model", pk=started.pk)
            if started.status == RegistrationJob.Status.FAILED:
                error = started.error  # a worker that was quicker than this request (or an eager one)
            else:
                return _registration_redirect(request, started, queued=True)
    context = {"form": form, "error": error, "from_path": from_path, "roots": model_roots() if from_path else []}
    return render(request, "training/model_add.html", context, status=400 if error else 200)


def _registration_redirect(request, job: RegistrationJob, *, queued: bool = False):
    """Done: to the model's page, saying so. Otherwise to the registration's page."""
    if job.status == RegistrationJob.Status.SUCCEEDED and job.model is not None:
        model = job.model
        messages.success(request, f"{model.name} registered ({model.get_kind_display()}, {model.get_source_display()}).")
        return redirect("training:model", pk=model.pk)
    if queued:
        messages.success(request, f"Registration of {job.name} queued: a jobs worker converts and copies it; this page follows it.")
    return redirect("training:registration", pk=job.pk)


@login_required
def registration_detail(request, pk: int):
    """Where a registration stands (queued, converting, saving), refreshing itself; once it is
    done, the model's page."""
    job = registration_get_for_user(user=request.user, job_id=pk)
    if job.status == RegistrationJob.Status.SUCCEEDED and job.model is not None:
        return _registration_redirect(request, job)
    return render(request, "training/registration.html", {"job": job, "state": job_state(job)})



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
    path("models/registrations/<id:pk>/", registration_detail, name="registration"),
]
