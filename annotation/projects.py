"""Projects and their members: the writes (services) and the project statistics read.

Services take keyword-only arguments and raise django.core.exceptions.ValidationError with a
{field: [messages]} dict, so a form, a serializer and a management command all report the same
field names. Nothing is written unless everything is valid.
"""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Max, Min, Q, Sum, Value
from django.db.models.functions import Least
from django.utils.text import slugify

from annotation.kinds import Kind, settings_errors
from annotation.questions import QuestionsError, validate_questions
from annotation.models import Item, Judgment, Membership, Project, Role

# What a manager may set on a project (create or update). Everything else is bookkeeping.
PROJECT_FIELDS = (
    "name",
    "slug",
    "instructions",
    "kind",
    "prompt_set",
    "allow_tie",
    "allow_both_bad",
    "likert_points",
    "likert_labels",
    "ranking_k",
    "ranking_min_k",
    "ranking_allow_ties",
    "rating_min",
    "rating_max",
    "rating_threshold",
    "rating_labels",
    "overlap",
    "lease_seconds",
    "gold_rate",
    "gold_pause_threshold",
    "gold_min_answers",
    "demonstrations",
    "edit_window_minutes",
    "questions",
    "archived",
)

# A user in this group (or holding annotation.add_project) may create projects without being staff.
MANAGERS_GROUP = "managers"


def user_can_create_projects(*, user) -> bool:
    if not user.is_authenticated:
        return False
    # has_perm is True for superusers; the group check covers a group without the permission row.
    return user.is_staff or user.has_perm("annotation.add_project") or user.groups.filter(name=MANAGERS_GROUP).exists()


def _unique_slug(name: str) -> str:
    base = slugify(name)[:70] or "project"
    if base in RESERVED_SLUGS:
        base = f"{base}-project"
    slug, n = base, 2
    while Project.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


# Slugs that would shadow a fixed URL under /projects/.
RESERVED_SLUGS = {"new"}
# The free-text settings' caps, checked here for the form and the API alike (the columns are
# TextFields: a cap there would take a migration and still not reach the API). Instructions are
# shown on every labelling page; the principles cap is the judge page's (training/judge/views.py).
TEXT_CAPS = {"instructions": 100_000, "principles": 20_000}
MAX_LABEL = 200  # a scale label is a few words; the probe stored 10 MB ones through the settings form


def _validate(project: Project) -> None:
    """Model field validation plus the kind settings that must agree with each other."""
    errors: dict[str, list[str]] = {}
    try:
        project.questions = validate_questions(project.questions)
    except QuestionsError as exc:
        errors["questions"] = [f"{where}: {message}" for where, message in exc.errors.items()]
    try:
        project.full_clean(exclude=["created_by", "questions"])
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if project.slug in RESERVED_SLUGS:
        errors.setdefault("slug", []).append(f"'{project.slug}' is reserved")
    for field, cap in TEXT_CAPS.items():
        if len(getattr(project, field) or "") > cap:
            errors.setdefault(field, []).append(f"at most {cap:,} characters")
    for field in ("likert_labels", "rating_labels"):
        if any(len(str(label)) > MAX_LABEL for label in getattr(project, field) or []):
            errors.setdefault(field, []).append(f"each label at most {MAX_LABEL} characters")
    for field, message in settings_errors(project).items():
        errors.setdefault(field, []).append(message)
    if errors:
        raise ValidationError(errors)


def _check_unknown(fields: dict) -> None:
    unknown = sorted(set(fields) - set(PROJECT_FIELDS))
    if unknown:
        raise ValidationError({name: ["is not a project setting"] for name in unknown})


@transaction.atomic
def project_create(*, name: str, created_by, kind: str = Kind.BINARY, slug: str | None = None, members: dict | None = None, **fields) -> Project:
    """Create a project; its creator becomes a manager. `members` maps user -> role."""
    _check_unknown({"name": name, "kind": kind, **fields})
    project = Project(name=name, kind=kind, slug=slug or _unique_slug(name), created_by=created_by, **fields)
    _validate(project)
    project.save()
    if created_by is not None:
        Membership.objects.create(project=project, user=created_by, role=Role.MANAGER)
    for user, role in (members or {}).items():
        membership_set(project=project, user=user, role=role)
    return project


@transaction.atomic
def project_update(*, project: Project, fields: dict) -> Project:
    """Change settings. The kind and K are fixed once items exist: stored answers and candidate
    counts depend on them."""
    _check_unknown(fields)
    current = Project.objects.select_for_update().get(pk=project.pk)
    has_items = Item.objects.filter(project=current).exists()
    errors: dict[str, list[str]] = {}
    if has_items and "kind" in fields and fields["kind"] != current.kind:
        errors["kind"] = ["cannot change once the project has items"]
    if has_items and current.kind == Kind.RANKING:
        errors.update(_ranking_range_errors(current, fields))
    if current.prompt_set and fields.get("prompt_set") is False and Item.objects.filter(project=current, candidates__isnull=True).exists():
        errors["prompt_set"] = ["cannot be turned off while items without responses exist (raters would be handed them)"]
    if "questions" in fields and Judgment.objects.filter(project=current).exists():
        errors.update(question_change_errors(current.questions, fields["questions"]))
    if errors:
        raise ValidationError(errors)
    for name, value in fields.items():
        setattr(current, name, value)
    _validate(current)
    current.save()
    # The caller's object reflects the saved state.
    for name in PROJECT_FIELDS:
        setattr(project, name, getattr(current, name))
    return project


# What may not change in a question once answers to it are stored: the answers' shape depends on it.
_FIXED_ONCE_ANSWERED = ("type", "per", "min", "max", "choices")


def question_change_errors(current: list[dict], new) -> dict[str, list[str]]:
    """A project with judgments may add questions and reword them (label, help, required,
    scale labels, text length), never drop one or change what its stored answers mean."""
    try:
        new = validate_questions(new)
    except QuestionsError:
        return {}  # _validate reports the declaration's own errors
    by_key = {q["key"]: q for q in new}
    problems = []
    for old in current:
        now = by_key.get(old["key"])
        if now is None:
            problems.append(f"{old['key']!r} cannot be removed once judgments exist (its answers are stored)")
            continue
        changed = [name for name in _FIXED_ONCE_ANSWERED if old.get(name) != now.get(name)]
        if changed:
            problems.append(f"{old['key']!r}: {', '.join(changed)} cannot change once judgments exist")
    return {"questions": problems} if problems else {}


def _ranking_range_errors(project: Project, fields: dict) -> dict[str, list[str]]:
    """A ranking project with items may widen its K range, never exclude items it holds."""
    low = fields.get("ranking_min_k", project.ranking_min_k)
    high = fields.get("ranking_k", project.ranking_k)
    if low == project.ranking_min_k and high == project.ranking_k:
        return {}
    sizes = Item.objects.filter(project=project).annotate(k=Count("candidates")).aggregate(lo=Min("k"), hi=Max("k"))
    errors = {}
    if sizes["hi"] is not None and high < sizes["hi"]:
        errors["ranking_k"] = [f"cannot be below {sizes['hi']}: the project has items with {sizes['hi']} responses"]
    if sizes["lo"] is not None and low > sizes["lo"]:
        errors["ranking_min_k"] = [f"cannot be above {sizes['lo']}: the project has items with {sizes['lo']} responses"]
    return errors


def _managers_left(project: Project, *, without_user) -> bool:
    return Membership.objects.filter(project=project, role=Role.MANAGER).exclude(user=without_user).exists()


@transaction.atomic
def membership_set(*, project: Project, user, role: str, paused: bool | None = None) -> Membership:
    """Add a user to the project with a role, or change their role (and pause flag)."""
    if role not in Role.values:
        raise ValidationError({"role": [f"must be one of {', '.join(Role.values)}"]})
    if user is None or not getattr(user, "is_active", False):
        raise ValidationError({"user": ["no such active user"]})
    membership = Membership.objects.select_for_update().filter(project=project, user=user).first()
    if membership and membership.role == Role.MANAGER and role != Role.MANAGER and not _managers_left(project, without_user=user):
        raise ValidationError({"role": ["a project needs at least one manager"]})
    if membership is None:
        membership = Membership(project=project, user=user)
    membership.role = role
    if paused is not None:
        membership.paused = paused
        if not paused:
            membership.paused_reason = ""
        elif not membership.paused_reason:
            membership.paused_reason = "paused by a manager"
    membership.save()
    return membership


@transaction.atomic
def membership_remove(*, project: Project, user) -> bool:
    """Take a user off the project. Their judgments stay (they are data); returns whether a
    membership was removed."""
    membership = Membership.objects.select_for_update().filter(project=project, user=user).first()
    if membership is None:
        return False
    if membership.role == Role.MANAGER and not _managers_left(project, without_user=user):
        raise ValidationError({"user": ["a project needs at least one manager"]})
    membership.delete()
    return True


def user_by_username(username: str):
    return get_user_model().objects.filter(username=username, is_active=True).first()


def project_statistics(*, project: Project) -> dict:
    """What researchers see on the overview: items, judgments, and how much of the work is done
    (judgments up to the overlap per item, over items x overlap)."""
    # One aggregate over all items and one over all judgments, each split by filters.
    real = Q(is_gold=False)
    row = Item.objects.filter(project=project).aggregate(
        n=Count("id", filter=real),
        gold=Count("id", filter=Q(is_gold=True)),
        done=Sum(Least("judgment_count", Value(project.overlap)), filter=real),
        complete=Count("id", filter=real & Q(judgment_count__gte=project.overlap)),
    )
    human = Q(source=Judgment.Source.HUMAN)
    judgments = Judgment.objects.filter(project=project).aggregate(human=Count("id", filter=human), other=Count("id", filter=~human))
    n_items = row["n"] or 0
    done = row["done"] or 0
    needed = n_items * project.overlap
    return {
        "items": n_items,
        "gold_items": row["gold"],
        "judgments": judgments["human"],
        "imported_judgments": judgments["other"],
        "items_complete": row["complete"] or 0,
        "done_percent": round(100.0 * done / needed, 1) if needed else 0.0,
        "raters": Membership.objects.filter(project=project, role=Role.RATER).count(),
    }
