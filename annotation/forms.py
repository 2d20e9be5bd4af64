"""Browser forms for projects and members. They parse input; annotation.projects validates and
writes, and its field-named errors are attached back to the form fields."""
from __future__ import annotations

import re

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from annotation.models import Project, Role
from annotation.projects import PROJECT_FIELDS


class LinesField(forms.CharField):
    """A list of labels, one per line (empty: no labels)."""

    widget = forms.Textarea(attrs={"rows": 4})

    def prepare_value(self, value):
        if isinstance(value, list):
            return "\n".join(str(v) for v in value)
        return value

    def to_python(self, value):
        value = super().to_python(value)
        if isinstance(value, list):
            return value
        return [line.strip() for line in (value or "").splitlines() if line.strip()]


class UsernamesField(forms.CharField):
    """Usernames separated by commas, spaces or new lines; each must exist."""

    def to_python(self, value):
        names = [n for n in re.split(r"[\s,]+", super().to_python(value) or "") if n]
        users = {u.username: u for u in get_user_model().objects.filter(username__in=names, is_active=True)}
        missing = [n for n in names if n not in users]
        if missing:
            raise ValidationError(f"no such user: {', '.join(missing)}")
        return [users[n] for n in names]


class ProjectForm(forms.ModelForm):
    likert_labels = LinesField(required=False, help_text="Optional: one label per point, from 'A much better' to 'B much better'.")
    rating_labels = LinesField(required=False, help_text="Optional: one label per score, lowest first.")

    class Meta:
        model = Project
        fields = [f for f in PROJECT_FIELDS if f != "archived"]
        widgets = {"instructions": forms.Textarea(attrs={"rows": 10})}
        help_texts = {"slug": "Used in URLs. Leave empty to derive it from the name."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["slug"].required = False

    # Settings grouped on the page; each kind uses only its own group.
    GROUPS = (
        ("Project", ("name", "slug", "instructions", "kind", "prompt_set", "archived")),
        ("Binary", ("allow_tie", "allow_both_bad")),
        ("Likert", ("likert_points", "likert_labels")),
        ("Ranking", ("ranking_k", "ranking_allow_ties")),
        ("Rating", ("rating_min", "rating_max", "rating_threshold", "rating_labels")),
        ("Assignment", ("overlap", "lease_seconds")),
        ("Gold items", ("gold_rate", "gold_pause_threshold", "gold_min_answers")),
        ("Members", ("raters", "researchers")),
    )

    def groups(self) -> list[tuple[str, list]]:
        out = []
        for title, names in self.GROUPS:
            fields = [self[name] for name in names if name in self.fields]
            if fields:
                out.append((title, fields))
        return out

    def _post_clean(self):
        # Model validation happens in the service (annotation.projects), which reports the
        # same field names to the form, the API and the management commands.
        pass

    def settings(self) -> dict:
        data = dict(self.cleaned_data)
        if not data.get("slug"):
            data.pop("slug", None)
        return {k: v for k, v in data.items() if k in PROJECT_FIELDS}

    def add_service_errors(self, error: ValidationError) -> None:
        for field, messages in error.message_dict.items():
            self.add_error(field if field in self.fields else None, messages)


class ProjectCreateForm(ProjectForm):
    raters = UsernamesField(required=False, help_text="Usernames, separated by commas or spaces.")
    researchers = UsernamesField(required=False, help_text="Usernames, separated by commas or spaces.")


class ProjectSettingsForm(ProjectForm):
    class Meta(ProjectForm.Meta):
        fields = list(PROJECT_FIELDS)


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.RATER)

    def clean_username(self):
        name = self.cleaned_data["username"].strip()
        user = get_user_model().objects.filter(username=name, is_active=True).first()
        if user is None:
            raise ValidationError(f"no such user: {name}")
        self.cleaned_data["user"] = user
        return name
