"""Which reward model orders a project's "least certain first", and when its pending items are
scored again. Filled into annotation.hooks.uncertainty at start (training/apps.py): annotation
keeps the setting and the priority column, training the model and the scoring (job.py)."""
from __future__ import annotations

from django.db import transaction
from django.db.models import Q

from annotation.models import Project
from annotation.selection import Selection, SelectionError, priorities_refresh
from training.registry.models import ModelArtifact
from training.core.heads import WeightsError, heads_read, weights_check, weights_parse
from training.registry.selectors import newest_reward_model, reward_models_for_project
from training.registry.services import model_path
from training.runs import lifecycle
from training.selection.models import SelectionChoice


def selection_model_for(project: Project) -> ModelArtifact | None:
    """The reward model that orders `uncertain`: the chosen one, or the newest of the project."""
    choice = SelectionChoice.objects.select_related("model").filter(project=project).first()
    return choice.model if choice is not None and choice.model is not None else newest_reward_model(project)


def selection_weights_for(project: Project) -> dict[str, float]:
    """The weights that combine the ordering model's heads ({}: the weights it was saved with)."""
    return SelectionChoice.objects.filter(project=project).values_list("weights", flat=True).first() or {}


def model_heads_of(model: ModelArtifact) -> dict | None:
    """The model's heads from its folder (training/core/heads.py); None for a single-head model.
    A broken heads file raises SelectionError: no weights can be checked against it."""
    try:
        return heads_read(model_path(model))
    except ValueError as exc:
        raise SelectionError(f"selection_weights: {model.name}: {exc}") from None


def on_reward_model_registered(*, model: ModelArtifact) -> None:
    """A reward model was trained on a snapshot of a project: projects ordering by the newest one
    are scored again."""
    if model.snapshot_id is None:
        return
    newest = Q(selection_choice__isnull=True) | Q(selection_choice__model__isnull=True)  # a row may hold only weights
    projects = Project.objects.filter(newest, pk=model.snapshot.project_id, selection=Selection.UNCERTAIN)
    for project in projects:
        priorities_refresh(project=project, reason=f"new reward model {model.name}")


class RewardModelUncertainty:
    """annotation.hooks.UncertaintyScorer: reward models of the registry, scored on the gpu queue."""

    def model_choices(self, *, project: Project, user) -> list[tuple[int, str]]:
        return list(reward_models_for_project(project=project, user=user).values_list("pk", "name"))

    def model_chosen(self, *, project: Project) -> int | None:
        return SelectionChoice.objects.filter(project=project).values_list("model_id", flat=True).first()

    def model_effective(self, *, project: Project) -> str | None:
        model = selection_model_for(project)
        return model.name if model is not None else None

    def model_weights(self, *, project: Project) -> dict[str, float]:
        return selection_weights_for(project)

    def model_attributes(self, *, project: Project) -> list[str] | None:
        model = selection_model_for(project)
        if model is None:
            return None
        try:
            heads = model_heads_of(model)
        except SelectionError:
            return None  # the page still shows; choosing weights names the broken file
        return heads["attributes"] if heads else None

    def model_choose(self, *, project: Project, model_id: int | None, user, weights=None) -> None:
        model = None
        if model_id is not None:
            # One message for a model that isn't there and one the project may not use: no probing.
            model = reward_models_for_project(project=project, user=user).filter(pk=model_id).first()
            if model is None:
                raise SelectionError("selection_model: no reward model with this id is available to this project")
        try:
            parsed = weights_parse(weights, field="selection_weights")
        except WeightsError as exc:
            raise SelectionError(str(exc)) from None
        if parsed:
            # Checked against the model that will score: the chosen one, else the newest now.
            effective = model or newest_reward_model(project)
            if effective is None:
                raise SelectionError("selection_weights: no reward model is trained on this project yet, so there are no heads to weigh")
            try:
                weights_check(model_heads_of(effective), parsed, field="selection_weights", model=effective.name)
            except WeightsError as exc:
                raise SelectionError(str(exc)) from None
        if model is None and not parsed:
            SelectionChoice.objects.filter(project=project).delete()
            return
        SelectionChoice.objects.update_or_create(project=project, defaults={"model": model, "weights": parsed or {}})

    def queue(self, *, project_id: int) -> None:
        from training.tasks import selection_score

        transaction.on_commit(lambda: selection_score.apply_async(args=[project_id], queue=lifecycle.queue_of(selection_score.name)))
