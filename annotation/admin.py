"""Django admin. Projects and members are editable; items carry their candidates inline; the
records of what raters did (leases, judgments, imports, snapshots) are read-only evidence.

The big tables (items, candidates, leases, judgments) stay fast at a million rows: foreign keys
are raw ids (no <select> of every item), list pages join what they show (list_select_related),
and the paginator counts at most a few thousand rows instead of COUNT(*) over the table.
"""
from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.paginator import Paginator
from django.utils.functional import cached_property

from annotation.kinds import settings_errors
from annotation.models import Assignment, Candidate, DatasetSnapshot, ImportBatch, Item, Judgment, Membership, Project, Role


class CappedCountPaginator(Paginator):
    """Counts at most CAP rows: past that the page list just stops growing. Filter or search
    to reach the rest; a COUNT(*) over a million rows on every page view is not worth it."""

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        return len(self.object_list.values_list("pk", flat=True)[: self.CAP])


class BigTableAdmin(admin.ModelAdmin):
    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 100
    ordering = ["-id"]


class ReadOnlyAdmin(BigTableAdmin):
    """Rows written by the app itself; editing them by hand would break the counters."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class ProjectAdminForm(forms.ModelForm):
    class Meta:
        model = Project
        exclude = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from annotation.forms import OPTIONAL_SETTINGS

        for name in OPTIONAL_SETTINGS:
            self.fields[name].required = False

    def clean(self):
        from annotation.forms import OPTIONAL_SETTINGS

        data = super().clean()
        for name in OPTIONAL_SETTINGS:
            if data.get(name) in (None, ""):
                data[name] = getattr(self.instance, name) if self.instance.pk else Project._meta.get_field(name).get_default()
        return data

    def _post_clean(self):
        super()._post_clean()  # builds self.instance from the cleaned data
        # The same cross-field checks as the browser form and the API (annotation.kinds).
        errors = settings_errors(self.instance)
        # The questions go through the service's own checks (annotation.questions), so the admin
        # stores the same normal form as the form and the API.
        from annotation.projects import question_change_errors
        from annotation.questions import QuestionsError, validate_questions

        try:
            self.instance.questions = validate_questions(self.instance.questions)
        except QuestionsError as exc:
            errors["questions"] = "; ".join(f"{k}: {v}" for k, v in exc.errors.items())
        else:
            if self.instance.pk and Judgment.objects.filter(project_id=self.instance.pk).exists():
                saved_questions = Project.objects.get(pk=self.instance.pk).questions
                changes = question_change_errors(saved_questions, self.instance.questions)
                if changes:
                    errors["questions"] = "; ".join(changes["questions"])
        if self.instance.pk and Item.objects.filter(project_id=self.instance.pk).exists():
            # Stored answers and candidate counts depend on these (annotation.projects.project_update).
            saved = Project.objects.get(pk=self.instance.pk)
            if saved.kind != self.instance.kind:
                errors["kind"] = "cannot change once the project has items"
            elif saved.kind == "ranking":
                from annotation.projects import _ranking_range_errors

                fields = {"ranking_k": self.instance.ranking_k, "ranking_min_k": self.instance.ranking_min_k}
                errors.update({k: v[0] for k, v in _ranking_range_errors(saved, fields).items()})
        for field, message in errors.items():
            if field in self.fields and field not in self.errors:
                self.add_error(field, message)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    raw_id_fields = ["user"]
    fields = ["user", "role", "paused", "paused_reason"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    form = ProjectAdminForm
    inlines = [MembershipInline]
    list_display = ["name", "slug", "kind", "overlap", "archived", "created_at"]
    list_filter = ["kind", "archived"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    raw_id_fields = ["created_by"]
    readonly_fields = ["created_at"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "kind", "instructions", "archived"]}),
        ("Binary", {"fields": ["allow_tie", "allow_both_bad"]}),
        ("Likert", {"fields": ["likert_points", "likert_labels"]}),
        ("Ranking", {"fields": ["ranking_min_k", "ranking_k", "ranking_allow_ties"]}),
        ("Raters' work", {"fields": ["demonstrations", "edit_window_minutes"]}),
        ("Questions beside the judgment", {"fields": ["questions"], "description": "A JSON list; see docs/questions.md."}),
        ("Rating", {"fields": ["rating_min", "rating_max", "rating_threshold", "rating_labels"]}),
        ("Assignment", {"fields": ["overlap", "lease_seconds"]}),
        ("Gold items", {"fields": ["gold_rate", "gold_pause_threshold", "gold_min_answers"]}),
        ("Record", {"fields": ["created_by", "created_at"]}),
    ]

    def save_model(self, request, obj, form, change):
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # A project made in the admin gets its creator as manager, as one made in the app does.
        project = form.instance
        if not change and project.created_by_id and not Membership.objects.filter(project=project, role=Role.MANAGER).exists():
            Membership.objects.get_or_create(project=project, user_id=project.created_by_id, defaults={"role": Role.MANAGER})


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "project", "role", "paused", "created_at"]
    list_filter = ["role", "paused", "project"]
    list_select_related = ["user", "project"]
    search_fields = ["user__username", "project__slug"]
    raw_id_fields = ["user", "project"]


class CandidateInline(admin.StackedInline):
    model = Candidate
    extra = 0
    fields = ["position", "model_name", "text", "metadata"]


@admin.register(Item)
class ItemAdmin(BigTableAdmin):
    inlines = [CandidateInline]
    list_display = ["external_id", "project", "is_gold", "judgment_count", "taken", "created_at"]
    list_filter = ["project", "is_gold"]
    list_select_related = ["project"]
    # Exact match only: a LIKE over a million prompts is a table scan.
    search_fields = ["=external_id"]
    raw_id_fields = ["project", "import_batch"]
    readonly_fields = ["judgment_count", "taken", "created_at"]


@admin.register(Judgment)
class JudgmentAdmin(ReadOnlyAdmin):
    list_display = ["id", "project", "item", "rater", "kind", "source", "value", "gold_correct", "created_at"]
    list_filter = ["project", "source", "kind"]
    list_select_related = ["project", "item", "rater"]
    search_fields = ["=item__external_id", "=rater__username"]
    raw_id_fields = ["project", "item", "rater", "assignment"]


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdmin):
    list_display = ["id", "project", "item", "rater", "status", "is_gold", "created_at", "expires_at"]
    list_filter = ["project", "status"]
    list_select_related = ["project", "item", "rater"]
    search_fields = ["=rater__username"]
    raw_id_fields = ["project", "item", "rater"]


@admin.register(ImportBatch)
class ImportBatchAdmin(ReadOnlyAdmin):
    list_display = ["id", "project", "filename", "format", "status", "lines_read", "items_created", "items_skipped", "lines_invalid", "judgments_created", "created_at"]
    list_filter = ["status", "project"]
    list_select_related = ["project"]
    raw_id_fields = ["project", "created_by"]


@admin.register(DatasetSnapshot)
class DatasetSnapshotAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "project", "version", "status", "progress", "created_at", "finished_at"]
    list_filter = ["status", "project"]
    list_select_related = ["project"]
    raw_id_fields = ["project", "created_by"]
