"""Django admin for the model registry and training runs.

A run row is written by the worker (status, steps, metrics): the change page only shows it.
Adding a run goes through run_create, exactly like the browser form and the API, and the
actions cancel runs or start them again with the same settings.
"""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db import transaction

from training.models import ModelArtifact, TrainingRun
from training.runs import ConfigError, run_cancel, run_create


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


class RunAddForm(forms.ModelForm):
    class Meta:
        model = TrainingRun
        fields = ["project", "snapshot", "base_model", "method", "use_lora", "config"]
        help_texts = {"config": 'Hyperparameters as JSON, e.g. {"num_train_epochs": 2}; missing ones take the recipe defaults.'}

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
        return {key: data[key] for key in ("project", "snapshot", "base_model", "method", "use_lora")} | {"config": data.get("config") or {}}


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
        return [f.name for f in TrainingRun._meta.fields if f.name != "id"]

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
                                 use_lora=run.use_lora, config=run.config, created_by=request.user)
                started.append(str(new.pk))
            except ConfigError as exc:
                errors.append(f"run {run.pk}: {exc}")
        if started:
            self.message_user(request, f"Queued run(s) {', '.join(started)}.", messages.SUCCESS)
        for error in errors:
            self.message_user(request, error, messages.ERROR)
