"""The start-run form: snapshot, base model, method, LoRA or full, and each method's
hyperparameters with the recipe's defaults (training.runs.services.recipe_config_schema)."""
from __future__ import annotations

from django import forms
from django.db.models import BooleanField, Case, Q, Value, When

from annotation.models import DatasetSnapshot, Project
from training.runs.models import TrainingRun
from training.recipes import catalog
from training.runs.services import recipe_config_schema
from training.registry.selectors import base_models_for_training, reward_models_for_runs
from training.runs.selectors import snapshots_trainable


def config_fields(method: str, data=None) -> list[dict]:
    """The schema rows of one method with the value to show: what was posted, else the default."""
    rows = []
    for row in recipe_config_schema(method):
        if row["unused"]:
            continue  # the method's trainer never reads it: no field that looks as if it did something
        key = f"{method}-{row['name']}"
        if data is not None and key in data:
            value = data.get(key, "")
        elif row["default"] is None:
            value = ""
        else:
            value = str(row["default"]).lower() if row["type"] == "bool" else str(row["default"])
        rows.append({**row, "key": key, "value": value})
    return rows


def config_from_post(method: str, data) -> dict:
    """The non-empty hyperparameters of the chosen method; empty means 'default/auto'.
    The recipe validates types and ranges and names the bad field (ConfigError)."""
    values = {}
    for row in recipe_config_schema(method):
        raw = (data.get(f"{method}-{row['name']}") or "").strip()
        if raw != "":
            values[row["name"]] = raw
    return values


class RunForm(forms.Form):
    snapshot = forms.ModelChoiceField(queryset=DatasetSnapshot.objects.none(), help_text="A ready dataset snapshot of this project.")
    base_model = forms.ModelChoiceField(queryset=None, help_text="From the model registry (python manage.py add_model).")
    method = forms.ChoiceField(choices=(), widget=forms.RadioSelect)
    training = forms.ChoiceField(
        choices=[("lora", "LoRA adapter (fast, small)"), ("full", "Full fine-tune")], initial="lora", widget=forms.RadioSelect
    )
    reward_model = forms.ModelChoiceField(
        queryset=None, required=False, help_text="Scores the rollouts of online methods (PPO, RLOO, GRPO); other methods ignore it."
    )

    evaluate_after = forms.BooleanField(
        required=False, initial=True, label="Evaluate the policy when it finishes",
        help_text="DPO, SFT, KTO: queue an evaluation against the base model on the jobs queue, judged by the project's newest reward model.",
    )

    num_processes = forms.IntegerField(min_value=1, max_value=64, initial=1, required=False, label="Processes",
                                       help_text="One per GPU of the worker; on a CPU worker, gloo processes.")
    distributed = forms.ChoiceField(choices=TrainingRun.Distributed.choices, initial=TrainingRun.Distributed.DDP, required=False,
                                    help_text="With several processes: DDP copies the model, FSDP and ZeRO-3 shard it (GPU only).")

    def __init__(self, *args, project: Project, user, **kwargs):
        super().__init__(*args, **kwargs)
        # The project's own snapshots, and snapshots of other projects that include this project's
        # data (extra_projects): training.runs.services.run_create accepts both. A
        # subquery rather than a join on extra_projects, which would repeat a snapshot once per
        # project it includes. Own snapshots first, so the default stays the newest own one.
        shared = DatasetSnapshot.objects.filter(extra_projects=project).values("pk")
        ready = DatasetSnapshot.objects.filter(Q(project=project) | Q(pk__in=shared), status=DatasetSnapshot.Status.READY)
        ready = ready.filter(pk__in=snapshots_trainable(user=user).values("pk"))  # training.runs.selectors: the shared-snapshot rule
        own = Case(When(project=project, then=Value(True)), default=Value(False), output_field=BooleanField())
        self.fields["snapshot"].queryset = ready.select_related("project").annotate(own=own).order_by("-own", "-version", "-pk")
        self.fields["base_model"].queryset = base_models_for_training(user=user)
        self.fields["reward_model"].queryset = reward_models_for_runs(user=user)
        # Read when the form is built, not at import: a method registered later still shows.
        self.recipes = catalog.all_recipes()
        self.fields["method"].choices = [(r.method, r.label) for r in self.recipes]
        self.fields["method"].initial = self.recipes[0].method if self.recipes else None
        self.needs_reward_model = [r.method for r in self.recipes if r.needs_reward_model]
        self.fields["snapshot"].label_from_instance = lambda s: (
            f"v{s.version} · {s.created_at:%Y-%m-%d %H:%M}" if s.project_id == project.pk
            # Versions count per project: name the project a shared snapshot comes from.
            else f"{s.project.slug} v{s.version} (shared) · {s.created_at:%Y-%m-%d %H:%M}"
        )
        self.fields["base_model"].label_from_instance = lambda m: f"{m.name} ({m.get_kind_display().lower()})"
