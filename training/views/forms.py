"""The start-run form: snapshot, base model, method, LoRA or full, and each method's
hyperparameters with the recipe's defaults (training.runs.recipe_config_schema)."""
from __future__ import annotations

from django import forms

from annotation.models import DatasetSnapshot, Project
from training.runs import recipe_config_schema
from training.selectors import base_models_for_training

METHODS = [("reward", "Reward model (Bradley–Terry)"), ("dpo", "DPO policy")]


def config_fields(method: str, data=None) -> list[dict]:
    """The schema rows of one method with the value to show: what was posted, else the default."""
    rows = []
    for row in recipe_config_schema(method):
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
    method = forms.ChoiceField(choices=METHODS, initial="reward", widget=forms.RadioSelect)
    training = forms.ChoiceField(
        choices=[("lora", "LoRA adapter (fast, small)"), ("full", "Full fine-tune")], initial="lora", widget=forms.RadioSelect
    )

    def __init__(self, *args, project: Project, user, **kwargs):
        super().__init__(*args, **kwargs)
        ready = DatasetSnapshot.objects.filter(project=project, status=DatasetSnapshot.Status.READY)
        self.fields["snapshot"].queryset = ready.order_by("-version")
        self.fields["base_model"].queryset = base_models_for_training(user=user)
        self.fields["snapshot"].label_from_instance = lambda s: f"v{s.version} · {s.created_at:%Y-%m-%d %H:%M}"
        self.fields["base_model"].label_from_instance = lambda m: f"{m.name} ({m.get_kind_display().lower()})"
