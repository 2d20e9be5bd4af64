"""Reads of runs and models, scoped by project membership (DESIGN.md: Roles).

Runs belong to a project: researchers and managers of it see them, raters get 403 and
outsiders 404 (annotation.selectors.project_get_for_user decides). Models are global, but a
trained model belongs to the project of the run (or snapshot) it came from; base models are
visible to anyone who is a researcher or manager somewhere.
"""
from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import Q, QuerySet
from django.http import Http404

from annotation.models import DatasetSnapshot, Membership, Project, Role
from annotation.selectors import project_get_for_user, user_role
from training.models import ModelArtifact, TrainingRun

VIEWER_ROLES = (Role.RESEARCHER, Role.MANAGER)


def projects_viewable(*, user) -> QuerySet[Project]:
    """Projects whose training the user may see (researcher or manager; staff: all)."""
    if not user.is_authenticated:
        return Project.objects.none()
    if user.is_staff:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user, memberships__role__in=VIEWER_ROLES).distinct()


def projects_managed(*, user) -> QuerySet[Project]:
    if not user.is_authenticated:
        return Project.objects.none()
    if user.is_staff:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user, memberships__role=Role.MANAGER).distinct()


def may_see_models(*, user) -> bool:
    return user.is_authenticated and (user.is_staff or Membership.objects.filter(user=user, role__in=VIEWER_ROLES).exists())


def run_list_for_user(*, user, project: Project | None = None) -> QuerySet[TrainingRun]:
    runs = TrainingRun.objects.select_related("project", "snapshot", "base_model")
    if project is not None:
        return runs.filter(project=project)
    return runs.filter(project__in=projects_viewable(user=user))


def row_get_for_user(rows: QuerySet, *, user, pk: int, role: str, what: str, action: str = "this page"):
    """A row of a project (a run, a judge job, an evaluation...), if the user holds `role` on its
    project: Http404 for outsiders and for a row that isn't there, 403 for too low a role."""
    row = rows.select_related("project").filter(pk=pk).first()
    if row is None:
        raise Http404(f"No such {what}")
    project_get_for_user(user=user, slug=row.project.slug, role=role, action=action)
    return row


def run_get_for_user(*, user, run_id: int, role: str = Role.RESEARCHER, action: str = "this run") -> TrainingRun:
    """The run, if the user holds `role` on its project: Http404 for outsiders, 403 for too low a role."""
    runs = TrainingRun.objects.select_related("snapshot", "base_model", "created_by")
    return row_get_for_user(runs, user=user, pk=run_id, role=role, what="run", action=action)


# --- Snapshots that hold several projects (extra_projects) ------------------------------------
# The one rule: starting a run on a snapshot needs the manager role on the snapshot's project and
# at least the researcher role on every project whose data it holds; a run's results and samples
# (prompts and responses of every project in the snapshot) are shown only to users who may read
# every one of those projects. Staff may do both.

def snapshot_project_ids(snapshot: DatasetSnapshot) -> set[int]:
    return {snapshot.project_id, *snapshot.extra_projects.values_list("pk", flat=True)}


def snapshot_readable(*, user, snapshot: DatasetSnapshot) -> bool:
    """Whether the user may read every project whose data the snapshot holds."""
    if not user.is_authenticated:
        return False
    if user.is_staff:
        return True
    ids = snapshot_project_ids(snapshot)
    readable = Membership.objects.filter(user=user, project_id__in=ids, role__in=VIEWER_ROLES).values("project_id").distinct().count()
    return readable == len(ids)


def snapshot_check_trainable(*, user, snapshot: DatasetSnapshot) -> None:
    """Raises PermissionDenied naming the project the user lacks a role on."""
    if user.is_staff:
        return
    if user_role(user=user, project=snapshot.project) != Role.MANAGER:
        raise PermissionDenied(f"snapshot: starting a run on {snapshot} needs the manager role on {snapshot.project.name}")
    roles = dict(Membership.objects.filter(user=user, project__in=snapshot.extra_projects.all()).values_list("project_id", "role"))
    for project in snapshot.extra_projects.order_by("name"):
        if roles.get(project.pk) not in VIEWER_ROLES:
            raise PermissionDenied(f"snapshot: {snapshot} holds the data of {project.name}, where starting a run needs at least the researcher role")


def snapshots_trainable(*, user) -> QuerySet[DatasetSnapshot]:
    """Snapshots the user may start a run on (the same rule as snapshot_check_trainable, as a query)."""
    snapshots = DatasetSnapshot.objects.all()
    if user.is_staff:
        return snapshots
    unreadable = Project.objects.exclude(pk__in=projects_viewable(user=user).values("pk"))
    return snapshots.filter(project__in=projects_managed(user=user)).exclude(extra_projects__in=unreadable)


def run_results_visible(*, user, run: TrainingRun) -> bool:
    """Results and samples of a run: for users who may read every project in its snapshot."""
    return snapshot_readable(user=user, snapshot=run.snapshot)


def can_manage_run(*, user, run: TrainingRun) -> bool:
    return user_role(user=user, project=run.project) == Role.MANAGER


def model_project(artifact: ModelArtifact) -> Project | None:
    """The project a trained model belongs to; None for a base model."""
    if artifact.run_id:
        return artifact.run.project
    if artifact.snapshot_id:
        return artifact.snapshot.project
    return None


def model_list_for_user(*, user) -> QuerySet[ModelArtifact]:
    models = ModelArtifact.objects.select_related("run", "run__project", "snapshot", "snapshot__project", "base_model")
    if not may_see_models(user=user):
        return models.none()
    if user.is_staff:
        return models
    projects = projects_viewable(user=user)
    base = Q(run__isnull=True, snapshot__isnull=True)
    return models.filter(base | Q(run__project__in=projects) | Q(run__isnull=True, snapshot__project__in=projects))


def model_get_for_user(*, user, model_id: int) -> ModelArtifact:
    related = ("run", "run__project", "snapshot", "snapshot__project", "base_model")
    artifact = ModelArtifact.objects.select_related(*related).filter(pk=model_id).first()
    if artifact is None:
        raise Http404("No such model")
    project = model_project(artifact)
    if project is not None:
        project_get_for_user(user=user, slug=project.slug, role=Role.RESEARCHER)
    elif not may_see_models(user=user):
        raise PermissionDenied("The model registry is for researchers and managers")
    return artifact


def model_lineage(artifact: ModelArtifact) -> list[ModelArtifact]:
    """The chain of base models, the model itself first and the original base last.

    Two queries whatever the depth (a model trained from a model trained from ...): a recursive
    CTE walks the base_model ids inside the database, then one query loads those models with what
    the lineage shows (run, snapshot and the snapshot's project). The CTE's UNION, unlike UNION ALL,
    drops an id it has already produced, so a cycle in bad data ends the walk instead of looping."""
    if not artifact.base_model_id:
        return [artifact]
    quote = connection.ops.quote_name
    table = quote(ModelArtifact._meta.db_table)
    pk, parent = quote(ModelArtifact._meta.pk.column), quote(ModelArtifact._meta.get_field("base_model").column)
    sql = (
        f"WITH RECURSIVE ancestors(id) AS ("
        f" SELECT {parent} FROM {table} WHERE {pk} = %s"
        f" UNION SELECT m.{parent} FROM {table} m JOIN ancestors a ON m.{pk} = a.id"
        f") SELECT id FROM ancestors WHERE id IS NOT NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [artifact.pk])
        ids = [row[0] for row in cursor.fetchall()]
    found = ModelArtifact.objects.select_related("run", "snapshot__project").in_bulk(ids)
    # Order the chain by following the links; `seen` guards against a cycle back to the model itself.
    chain, seen = [artifact], {artifact.pk}
    while chain[-1].base_model_id in found and chain[-1].base_model_id not in seen:
        parent_model = found[chain[-1].base_model_id]
        seen.add(parent_model.pk)
        chain.append(parent_model)
    return chain


def base_models_for_training(*, user) -> QuerySet[ModelArtifact]:
    """Models a run may start from: visible to the user, full models (not adapters)."""
    return model_list_for_user(user=user).filter(is_adapter=False).order_by("name")


def reward_models_for_runs(*, user) -> QuerySet[ModelArtifact]:
    """Reward models an online run may score its rollouts with: visible to the user (adapters too)."""
    return model_list_for_user(user=user).filter(kind=ModelArtifact.Kind.REWARD_MODEL).order_by("name")


def may_register_models(*, user) -> bool:
    """Managers of any project and staff may add base models from the browser."""
    return user.is_authenticated and (user.is_staff or projects_managed(user=user).exists())
