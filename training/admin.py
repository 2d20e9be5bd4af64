"""Django admin for the model registry and training runs.

A run row is written by the worker (status, steps, metrics): the change page only shows it.
Adding a run goes through run_create, exactly like the browser form and the API, and the
actions cancel runs or start them again with the same settings.
"""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import transaction
from django.template.response import TemplateResponse

from annotation.models import DatasetSnapshot
from config import jsonlimits
from training.judge.models import JudgeJob
from training.loop.models import Job
from training.registration.models import RegistrationJob
from training.runs.lifecycle import LIFECYCLE_FIELDS
from training.registry.models import ModelArtifact
from training.runs.models import SnapshotForTraining, TrainingRun
from training.recipes import catalog
from training.runs.services import ConfigError, run_cancel, run_create


@admin.register(ModelArtifact)
class ModelArtifactAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "source", "is_adapter", "base_model", "run", "snapshot", "created_at"]
    list_filter = ["kind", "source", "is_adapter"]
    search_fields = ["name"]
    list_select_related = ["base_model", "run", "snapshot", "snapshot__project"]
    readonly_fields = ["name", "kind", "source", "path", "is_adapter", "base_model", "run", "snapshot", "config", "metrics", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False  # models enter through `manage.py add_model` (validated, safetensors only) or a run


class _DryRun(Exception):
    pass


def _report_queued(model_admin: admin.ModelAdmin, request, started: list[str], errors: list[str]) -> None:
    """One success line for the runs queued, one error line per run refused (both start actions)."""
    if started:
        model_admin.message_user(request, f"Queued run(s) {', '.join(started)}.", messages.SUCCESS)
    for error in errors:
        model_admin.message_user(request, error, messages.ERROR)


class RunAddForm(forms.ModelForm):
    method = forms.ChoiceField(choices=())

    class Meta:
        model = TrainingRun
        fields = ["project", "snapshot", "base_model", "method", "use_lora", "reward_model", "config"]
        help_texts = {"config": 'Hyperparameters as JSON, e.g. {"num_train_epochs": 2}; missing ones take the recipe defaults.'}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["method"].choices = catalog.choices()
        needs = [r.method for r in catalog.all_recipes() if r.needs_reward_model]
        self.fields["reward_model"].help_text = f"Only for {', '.join(needs)} runs." if needs else "No method uses one yet."

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        # The service is the one judge of a valid run: try it in a savepoint and roll back, so
        # its error lands on the form (and nothing is enqueued: rolled-back on_commit hooks are dropped).
        try:
            with transaction.atomic():
                run_create(**self._arguments(data))
                raise _DryRun
        except _DryRun:
            pass
        except ConfigError as exc:
            field, _, message = str(exc).partition(": ")
            self.add_error(field if field in self.fields else None, message if field in self.fields else str(exc))
        return data

    @staticmethod
    def _arguments(data) -> dict:
        return {key: data[key] for key in ("project", "snapshot", "base_model", "method", "use_lora")} | {
            "config": data.get("config") or {}, "reward_model": data.get("reward_model")}


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "method", "use_lora", "base_model", "snapshot", "status", "step", "total_steps", "worker", "created_at"]
    list_filter = ["status", "method", "use_lora"]
    search_fields = ["project__slug", "project__name", "base_model__name", "worker"]
    list_select_related = ["project", "base_model", "snapshot", "snapshot__project"]
    raw_id_fields = ["snapshot"]
    actions = ["cancel_runs", "start_again"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = RunAddForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return RunAddForm.Meta.fields
        names = [f.name for f in TrainingRun._meta.fields if f.name != "id"]
        # What the run is first, then its lifecycle (whose fields the abstract base puts first).
        return [n for n in names if n not in LIFECYCLE_FIELDS] + [n for n in names if n in LIFECYCLE_FIELDS]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.get_fields(request, obj)

    def save_model(self, request, obj, form, change):
        if change:
            return  # the worker owns the row
        run = run_create(**RunAddForm._arguments(form.cleaned_data), created_by=request.user)
        obj.pk = run.pk
        obj.__dict__.update({k: v for k, v in run.__dict__.items() if not k.startswith("_")})

    @admin.action(description="Cancel selected runs")
    def cancel_runs(self, request, queryset):
        stopped = 0
        for run in queryset:
            before = run.status
            run = run_cancel(run=run)
            stopped += run.status != before or run.cancel_requested
        self.message_user(request, f"Asked {stopped} run(s) to stop; finished runs were left alone.", messages.SUCCESS)

    @admin.action(description="Start again with the same snapshot, base model and settings")
    def start_again(self, request, queryset):
        started, errors = [], []
        for run in queryset.select_related("project", "snapshot", "base_model"):
            try:
                new = run_create(project=run.project, snapshot=run.snapshot, base_model=run.base_model, method=run.method,
                                 use_lora=run.use_lora, config=run.config, reward_model=run.reward_model, created_by=request.user,
                                 num_processes=run.num_processes, distributed=run.distributed)
                started.append(str(new.pk))
            except ConfigError as exc:
                errors.append(f"run {run.pk}: {exc}")
        _report_queued(self, request, started, errors)


class StartTrainingForm(forms.Form):
    base_model = forms.ModelChoiceField(queryset=ModelArtifact.objects.filter(is_adapter=False).order_by("name"))
    method = forms.ChoiceField(choices=())
    use_lora = forms.BooleanField(required=False, initial=True, label="LoRA")
    reward_model = forms.ModelChoiceField(queryset=ModelArtifact.objects.filter(kind=ModelArtifact.Kind.REWARD_MODEL).order_by("name"),
                                          required=False, help_text="Only for methods that score rollouts (PPO, RLOO, GRPO).")
    config = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), help_text="Hyperparameters as JSON; empty: defaults.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["method"].choices = catalog.choices()

    def clean_config(self) -> dict:
        raw = (self.cleaned_data.get("config") or "").strip()
        if not raw:
            return {}
        try:
            value = jsonlimits.loads(raw)
        except jsonlimits.UnsafeJSON as exc:
            raise forms.ValidationError(str(exc)) from None
        if not isinstance(value, dict):
            raise forms.ValidationError("expected a JSON object")
        return value


@admin.register(SnapshotForTraining)
class SnapshotForTrainingAdmin(admin.ModelAdmin):
    """Ready snapshots, with an action that starts a run on each selected one (via run_create)."""

    list_display = ["__str__", "project", "version", "created_at"]
    list_filter = ["project"]
    list_select_related = ["project"]
    actions = ["start_training"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(status=DatasetSnapshot.Status.READY)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_actions(self, request):
        # Snapshots are evidence (annotation admin); from here one may only train on them.
        actions = super().get_actions(request)
        return {name: action for name, action in actions.items() if name != "delete_selected"}

    @admin.action(description="Start training on the selected snapshots")
    def start_training(self, request, queryset):
        form = StartTrainingForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            started, errors = [], []
            for snapshot in queryset.select_related("project"):
                try:
                    run = run_create(project=snapshot.project, snapshot=snapshot, base_model=form.cleaned_data["base_model"],
                                     method=form.cleaned_data["method"], use_lora=form.cleaned_data["use_lora"],
                                     config=form.cleaned_data["config"], reward_model=form.cleaned_data.get("reward_model"),
                                     created_by=request.user)
                    started.append(f"{run.pk} ({snapshot})")
                except ConfigError as exc:
                    errors.append(f"{snapshot}: {exc}")
            _report_queued(self, request, started, errors)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Start training",
            "form": form,
            "snapshots": queryset,
            "opts": self.model._meta,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/training/start_training.html", context)


class _JobAdmin(admin.ModelAdmin):
    """The short jobs (judge, evaluation, generation, registration), read-only: they are started
    and cancelled from their own pages, where the services check who may; here staff see them all."""

    list_filter = ("status", "phase")
    ordering = ("-created_at",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(JudgeJob)
class JudgeJobAdmin(_JobAdmin):
    list_display = ("id", "project", "model", "status", "phase", "done", "total", "created_at")
    list_select_related = ("project", "model")


@admin.register(Job)
class LoopJobAdmin(_JobAdmin):
    list_display = ("id", "kind", "project", "policy", "status", "phase", "done", "total", "created_at")
    list_filter = ("kind", "status", "phase")
    list_select_related = ("project", "policy")


@admin.register(RegistrationJob)
class RegistrationJobAdmin(_JobAdmin):
    list_display = ("id", "name", "source", "status", "phase", "model", "created_at")
    list_select_related = ("model",)
