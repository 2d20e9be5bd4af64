"""Browser forms for projects and members. They parse input; annotation.projects validates and
writes, and its field-named errors are attached back to the form fields."""
from __future__ import annotations

import json
import re

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from annotation.kinds import Kind, settings_errors
from annotation.models import Project, Role
from annotation.models.project import SETTING_BOUNDS, _bounds
from annotation.projects import PROJECT_FIELDS
from annotation.questions import LABELS, PER_ITEM, PER_RESPONSE, SCALE, QuestionsError, validate_questions

# The new-project form starts from these, one card per kind (DESIGN.md: Judgment kinds).
KIND_DESCRIPTIONS = {
    Kind.BINARY: "Raters pick the better of two responses (optionally tie or both bad). Becomes chosen/rejected pairs.",
    Kind.LIKERT: "Raters say how much better one of two responses is, on a symmetric scale. Pairs with a margin.",
    Kind.RANKING: "Raters order K responses, best first. Every ordered pair becomes a preference pair.",
    Kind.RATING: "Raters score each response on a scale. Unpaired good/bad labels, and pairs where scores differ.",
}
# Settings that belong to one kind; the form shows only the chosen kind's group.
KIND_GROUPS = {"Binary": Kind.BINARY, "Likert": Kind.LIKERT, "Ranking": Kind.RANKING, "Rating": Kind.RATING}
PREVIEW_FIELDS = ("kind", "allow_tie", "allow_both_bad", "likert_points", "likert_labels", "ranking_k", "ranking_allow_ties", "rating_min", "rating_max", "rating_threshold", "rating_labels")


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


class QuestionsField(forms.CharField):
    """The questions' declaration as JSON text: what project_form.js's builder writes into the
    field, and what a manager without JavaScript types. Only the JSON syntax is checked here; the
    service (annotation.questions.validate_questions) checks the declaration and names each field."""

    widget = forms.Textarea(attrs={"rows": 8, "spellcheck": "false", "class": "json"})

    def prepare_value(self, value):
        if isinstance(value, list):
            return json.dumps(value, indent=2, ensure_ascii=False)
        return value

    def to_python(self, value):
        if isinstance(value, list):
            return value
        text = (super().to_python(value) or "").strip()
        if not text:
            return []
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ValidationError(f"not valid JSON: {exc}") from None


class UsernamesField(forms.CharField):
    """Usernames separated by commas, spaces or new lines; each must exist."""

    def to_python(self, value):
        names = [n for n in re.split(r"[\s,]+", super().to_python(value) or "") if n]
        users = {u.username: u for u in get_user_model().objects.filter(username__in=names, is_active=True)}
        missing = [n for n in names if n not in users]
        if missing:
            raise ValidationError(f"no such user: {', '.join(missing)}")
        return [users[n] for n in names]


OPTIONAL_SETTINGS = ("ranking_min_k", "demonstrations", "edit_window_minutes")


class ProjectForm(forms.ModelForm):
    questions = QuestionsField(
        required=False,
        initial=list,
        label="Questions as JSON",
        help_text='A list such as [{"key": "helpfulness", "label": "Helpfulness", "type": "scale", "per": "response", "min": 0, "max": 4, "required": true}]. Types: scale (min, max, scale_labels), labels (choices), text (max_chars).',
    )
    likert_labels = LinesField(required=False, label="Names of the scale points", help_text="Optional: one label per point, from 'A much better' to 'B much better'.")
    rating_labels = LinesField(required=False, label="Names of the scores", help_text="Optional: one label per score, lowest first.")

    class Meta:
        model = Project
        fields = [f for f in PROJECT_FIELDS if f != "archived"]
        widgets = {"instructions": forms.Textarea(attrs={"rows": 10})}
        # Words for people: Django's defaults from the field names read "Ranking min k".
        labels = {
            "allow_tie": "Raters may answer 'tie'",
            "allow_both_bad": "Raters may answer 'both bad'",
            "likert_points": "Points on the scale",
            "ranking_k": "Most responses per item",
            "ranking_min_k": "Fewest responses per item",
            "ranking_allow_ties": "Raters may rank responses equal",
            "rating_min": "Lowest score",
            "rating_max": "Highest score",
            "rating_threshold": "Lowest score that counts as good",
            "edit_window_minutes": "Minutes a rater may change an answer",
            "overlap": "Raters per item",
            "lease_seconds": "Seconds a rater holds an item",
            "gold_rate": "Share of gold items",
            "gold_pause_threshold": "Pause raters below this gold accuracy",
            "gold_min_answers": "Gold answers before a pause",
            "prompt_set": "Prompt set for online RL",
        }
        help_texts = {"slug": "Used in URLs. Leave empty to derive it from the name."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["slug"].required = False
        # Settings added later than the form's first users: left out, they keep their default.
        for name in OPTIONAL_SETTINGS:
            if name in self.fields:
                self.fields[name].required = False
        # The model's bounds, checked by the form too (and shown as min/max on the inputs).
        for name, (low, high) in SETTING_BOUNDS.items():
            field = self.fields.get(name)
            if field is not None:
                field.min_value, field.max_value = low, high
                field.validators.extend(validator for validator in _bounds(name) if validator not in field.validators)
                field.widget.attrs.update({"min": low, "max": high})

    # Settings grouped on the page; each kind uses only its own group.
    GROUPS = (
        ("Project", ("name", "slug", "instructions", "kind", "archived")),
        ("Binary", ("allow_tie", "allow_both_bad")),
        ("Likert", ("likert_points", "likert_labels")),
        ("Ranking", ("ranking_min_k", "ranking_k", "ranking_allow_ties")),
        ("Rating", ("rating_min", "rating_max", "rating_threshold", "rating_labels")),
        ("Questions", ("questions",)),
        ("Raters' work", ("demonstrations", "edit_window_minutes")),
        ("Assignment", ("overlap", "lease_seconds", "prompt_set")),
        ("Gold items", ("gold_rate", "gold_pause_threshold", "gold_min_answers")),
        ("Members", ("raters", "researchers")),
    )

    # Shown folded: most projects keep the defaults.
    FOLDED = ("Raters' work", "Assignment", "Gold items")

    def groups(self) -> list[dict]:
        """The page's fieldsets: title, fields, the kind they belong to (or ""), folded or not."""
        out = []
        for title, names in self.GROUPS:
            # The questions have their own section in the template (the builder), the kind its cards.
            if title == "Questions":
                out.append({"title": title, "questions": True, "fields": [self["questions"]], "kind": "", "folded": False})
                continue
            fields = [self[name] for name in names if name in self.fields and name != "kind"]
            if fields:
                folded = title in self.FOLDED and not any(f.errors for f in fields)
                out.append({"title": title, "fields": fields, "kind": KIND_GROUPS.get(title, ""), "folded": folded})
        return out

    def chosen_kind(self) -> str:
        value = self["kind"].value()
        return value if value in Kind.values else Kind.BINARY

    def kind_cards(self) -> list[dict]:
        chosen = self.chosen_kind()
        return [{"value": v, "label": label, "description": KIND_DESCRIPTIONS[v], "checked": v == chosen} for v, label in Kind.choices]

    def _post_clean(self):
        # Model validation happens in the service (annotation.projects), which reports the
        # same field names to the form, the API and the management commands.
        pass

    def settings(self) -> dict:
        data = dict(self.cleaned_data)
        if not data.get("slug"):
            data.pop("slug", None)
        # A post without the field at all (a script written before questions existed) leaves
        # the project's questions as they are; an empty field asks none.
        if self.is_bound and "questions" not in self.data:
            data.pop("questions", None)
        return {k: v for k, v in data.items() if k in PROJECT_FIELDS and not (k in OPTIONAL_SETTINGS and v in (None, ""))}

    def add_service_errors(self, error: ValidationError) -> None:
        for field, messages in error.message_dict.items():
            self.add_error(field if field in self.fields else None, messages)

    def asks_questions(self) -> bool:
        """Whether the form holds any question (a bound form's text, else the saved or default
        ones): the page unfolds the questions section for them."""
        value = self["questions"].value()
        return not (value is None or "".join(str(value).split()) in ("", "[]"))

    def question_errors(self) -> list[dict]:
        """The service's "questions[i].field: message" errors in words that name the question
        (its number and key, as posted) and the field; the builder puts each beside its input."""
        # add_error took the field out of cleaned_data: read the posted text again.
        try:
            posted = json.loads(self.data.get("questions", ""))
        except ValueError:
            posted = None
        out = []
        for message in self.errors.get("questions", []):
            match = QUESTION_ERROR.fullmatch(message)
            if not match:
                out.append({"index": "", "field": "", "text": message})
                continue
            index, field, words = int(match[1]), match[2], match[3]
            entry = posted[index] if isinstance(posted, list) and index < len(posted) else None
            key = entry.get("key") if isinstance(entry, dict) and isinstance(entry.get("key"), str) else ""
            name = f"Question {index + 1}" + (f" ({key})" if key else "")
            out.append({"index": index, "field": field, "text": f"{name}, {field}: {words}"})
        return out


QUESTION_ERROR = re.compile(r"questions\[(\d+)\]\.(\w+): (.*)", re.S)


class ProjectCreateForm(ProjectForm):
    raters = UsernamesField(required=False, help_text="Usernames, separated by commas or spaces.")
    researchers = UsernamesField(required=False, help_text="Usernames, separated by commas or spaces.")


class ProjectSettingsForm(ProjectForm):
    class Meta(ProjectForm.Meta):
        fields = list(PROJECT_FIELDS)


class MemberForm(forms.Form):
    # The browser offers the users listed in the page's <datalist id="user-choices"> as one types.
    username = forms.CharField(max_length=150, widget=forms.TextInput(attrs={"list": "user-choices", "autocomplete": "off"}))
    role = forms.ChoiceField(choices=Role.choices, initial=Role.RATER)

    def clean_username(self):
        name = self.cleaned_data["username"].strip()
        user = get_user_model().objects.filter(username=name, is_active=True).first()
        if user is None:
            raise ValidationError(f"no such user: {name}")
        self.cleaned_data["user"] = user
        return name


def preview_project(query) -> tuple[Project, dict[str, str]]:
    """An unsaved project with the kind settings in `query` (the form's fields), for the preview
    of what raters will see; a missing field keeps the model default. Also the field errors."""
    form = ProjectForm()
    project = Project(name="Preview", slug="preview")
    errors: dict[str, str] = {}
    for name in PREVIEW_FIELDS:
        field = form.fields[name]
        raw = field.widget.value_from_datadict(query, {}, name)
        if raw in (None, "") and not isinstance(field, forms.BooleanField):
            continue
        try:
            setattr(project, name, field.clean(raw))
        except ValidationError as exc:
            errors[name] = exc.messages[0]
    if not errors:
        # The threshold does not change the screen; the form itself reports it on save.
        errors.update({k: v for k, v in settings_errors(project).items() if k != "rating_threshold"})
    return project, errors


def preview_questions(query) -> tuple[list[dict], list[str]]:
    """The questions posted with the preview's settings, normalised, or the reasons they cannot
    be shown; the kind's preview is drawn either way."""
    raw = query.get("questions", "") if hasattr(query, "get") else ""
    try:
        return validate_questions(QuestionsField().to_python(raw)), []
    except ValidationError as exc:
        return [], [f"questions: {m}" for m in exc.messages]
    except QuestionsError as exc:
        return [], [f"{where}: {message}" for where, message in exc.errors.items()]


# Offered by the builder (project_form.js); each is a valid declaration on its own
# (tests/annotation/test_project_questions_form.py checks them with validate_questions).
QUESTION_PRESETS = {
    "helpsteer2": {
        "title": "HelpSteer2 attributes",
        "questions": [
            {"key": key, "label": key.capitalize(), "type": SCALE, "per": PER_RESPONSE, "required": True, "help": help_text, "min": 0, "max": 4, "scale_labels": []}
            for key, help_text in (
                ("helpfulness", "Overall helpfulness of the response to the prompt."),
                ("correctness", "Inclusion of all pertinent facts without errors."),
                ("coherence", "Consistency and clarity of expression."),
                ("complexity", "Intellectual depth required to write the response (basic competency or deep domain expertise)."),
                ("verbosity", "Amount of detail included in the response, relative to what the prompt asks for."),
            )
        ],
    },
    "harm": {
        "title": "Harm categories",
        "questions": [
            {
                "key": "harm", "label": "Harm categories", "type": LABELS, "per": PER_ITEM, "required": False,
                "help": "Tick every kind of harm any response shows; leave all unticked if none apply.",
                "choices": ["violence", "self_harm", "sexual_content", "hate_or_harassment", "illegal_activity", "privacy", "misinformation"],
            }
        ],
    },
}


def member_choices(*, limit: int = 1000) -> list[str]:
    """Usernames offered by the member picker (active users, alphabetical)."""
    return list(get_user_model().objects.filter(is_active=True).order_by("username").values_list("username", flat=True)[:limit])
