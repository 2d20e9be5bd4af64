"""Which reward model orders a project's "least certain first", and when its pending items are
scored again. Filled into annotation.hooks.uncertainty at start (training/apps.py): annotation
keeps the setting and the priority column, training the model and the scoring (job.py)."""
from __future__ import annotations

from django.db import transaction

from annotation.models import Project
from annotation.selection import Selection, SelectionError, priorities_refresh
from training.registry.models import ModelArtifact
from training.registry.selectors import newest_reward_model, reward_models_for_project
from training.runs import lifecycle
from training.selection.models import SelectionChoice


def selection_model_for(project: Project) -> ModelArtifact | None:
    """The reward model that orders `uncertain`: the chosen one, or the newest of the project."""
    choice = SelectionChoice.objects.select_related("model").filter(project=project).first()
    return choice.model if choice is not None else newest_reward_model(project)


def on_reward_model_registered(*, model: ModelArtifact) -> None:
    """A reward model was trained on a snapshot of a project: projects ordering by the newest one
    are scored again."""
    if model.snapshot_id is None:
        return
    projects = Project.objects.filter(pk=model.snapshot.project_id, selection=Selection.UNCERTAIN, selection_choice__isnull=True)
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

    def model_choose(self, *, project: Project, model_id: int | None, user) -> None:
        if model_id is None:
            SelectionChoice.objects.filter(project=project).delete()
            return
        # One message for a model that isn't there and one the project may not use: no probing.
        model = reward_models_for_project(project=project, user=user).filter(pk=model_id).first()
        if model is None:
            raise SelectionError("selection_model: no reward model with this id is available to this project")
        SelectionChoice.objects.update_or_create(project=project, defaults={"model": model})

    def queue(self, *, project_id: int) -> None:
        from training.tasks import selection_score

        transaction.on_commit(lambda: selection_score.apply_async(args=[project_id], queue=lifecycle.queue_of(selection_score.name)))
