"""Reads of the model registry, scoped by project membership (DESIGN.md: Roles).

Models are global, but a trained model belongs to the project of the run (or snapshot) it came
from; base models are visible to anyone who is a researcher or manager somewhere.
"""
from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import Q, QuerySet
from django.http import Http404

from annotation.models import Membership, Project, Role
from annotation.selectors import project_get_for_user
from training.core.access import VIEWER_ROLES, projects_managed, projects_viewable
from training.registry.models import ModelArtifact

def may_see_models(*, user) -> bool:
    return user.is_authenticated and (user.is_staff or Membership.objects.filter(user=user, role__in=VIEWER_ROLES).exists())


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
    """Managers of any project and staff may add base models from the browser; managers only the
    packaged ones, which read no path the user gives (see may_register_from_path)."""
    return user.is_authenticated and (user.is_staff or projects_managed(user=user).exists())


def may_register_from_path(*, user) -> bool:
    """Only staff touch the server's disk (DESIGN.md: Roles): a folder or GGUF file, and then only
    under ARBITER_MODEL_ROOTS (services.model_path_under_roots)."""
    return user.is_authenticated and user.is_active and user.is_staff


def newest_reward_model(project: Project) -> ModelArtifact | None:
    """The newest reward model trained on a snapshot of this project, or None."""
    return ModelArtifact.objects.filter(kind=ModelArtifact.Kind.REWARD_MODEL, snapshot__project=project).order_by("-created_at", "-id").first()


def reward_models_for_project(*, project: Project, user=None) -> QuerySet[ModelArtifact]:
    """Reward models a project may use for its own work ("least certain first"): trained on this
    project, or registered for everyone (no project), and, when a user acts, visible to them.
    Another project's model is never offered nor accepted: its name alone would leak."""
    models = ModelArtifact.objects.filter(kind=ModelArtifact.Kind.REWARD_MODEL)
    if user is not None:
        models = models & model_list_for_user(user=user)
    own = Q(run__project=project) | Q(run__isnull=True, snapshot__project=project) | Q(run__isnull=True, snapshot__isnull=True)
    return models.filter(own).order_by("-created_at", "-id")
