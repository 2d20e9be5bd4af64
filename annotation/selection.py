"""Which item a rater gets next (DESIGN.md, "The loop": active selection).

The claim (annotation/assignment.py) takes the first free row of the index
item_next_idx (project, is_gold, taken, priority, id): items with the fewest judgments and leases
first, and among those the lowest `priority`. A project's `selection` decides what the priority
holds, so that every ordering stays the same index range scan with LIMIT 1 at any size:

- fewest:    0 for every item: oldest first (the id), as before priorities existed;
- random:    a random number drawn when the item is imported (or when the setting changes);
- uncertain: the reward model's margin between the item's closest two candidates, |r_a - r_b|
             (smallest first: the pairs the model is least sure of). Items not scored yet have 0,
             so they come first: nothing is known of them. A job on the gpu queue scores every
             pending item (training/selection_job.py) when the setting is chosen, after an
             import, when a newer reward model of the project is registered, or on demand.

Gold items keep priority 0: their order must not depend on a model.
"""
from __future__ import annotations

import random

from django.db import connection, transaction
from django.utils import timezone

from annotation.models import Item, Project

Selection = Project.Selection


class SelectionError(ValueError):
    """A bad selection setting; the message names the field."""


def initial_priority(project: Project):
    """The priority of an item imported now: a function of no arguments, called once per item."""
    if project.selection == Selection.RANDOM:
        return random.random
    return lambda: 0.0


def _random_sql() -> str:
    # A uniform number in [0, 1) computed by the database, so that 1,000,000 rows take one statement.
    if connection.vendor == "postgresql":
        return "random()"
    return "((random() / 18446744073709551616.0) + 0.5)"  # SQLite: a signed 64-bit integer


# Above this many items the UPDATE runs on the default worker rather than in the request (a
# million rows take about a minute on PostgreSQL).
INLINE_RESET_ITEMS = 50_000


def priorities_reset(*, project: Project) -> None:
    """Priorities for `fewest` (0) or `random` (drawn now): in this transaction for a small
    project, on the default worker (queued after commit) for a large one."""
    if Item.objects.filter(project=project).count() <= INLINE_RESET_ITEMS:
        priorities_reset_now(project_id=project.id)
        return
    from annotation.tasks import selection_reset

    Project.objects.filter(pk=project.pk).update(selection_status={"state": "queued", "reason": "the setting changed", "at": timezone.now().isoformat()})
    transaction.on_commit(lambda: selection_reset.apply_async(args=[project.id], queue="default"))


def priorities_reset_now(*, project_id: int) -> int:
    """One UPDATE of every non-gold item's priority, by the project's current setting (a
    late or repeated task reads the setting again, so it never applies a stale one)."""
    project = Project.objects.filter(pk=project_id).only("selection").first()
    if project is None or project.selection == Selection.UNCERTAIN:
        return 0
    value = _random_sql() if project.selection == Selection.RANDOM else "0.0"
    with connection.cursor() as cur:
        cur.execute(f"UPDATE {Item._meta.db_table} SET priority = {value} WHERE project_id = %s AND is_gold = %s", [project_id, False])
        updated = cur.rowcount
    Project.objects.filter(pk=project_id, selection=project.selection).update(selection_status={})
    return updated


def selection_model_for(project: Project):
    """The reward model that orders `uncertain`: the chosen one, or the newest reward model
    trained on a snapshot of this project."""
    if project.selection_model_id:
        return project.selection_model
    return newest_reward_model(project)


def newest_reward_model(project: Project):
    """The newest reward model trained on a snapshot of this project, or None."""
    from training.models import ModelArtifact

    return ModelArtifact.objects.filter(kind=ModelArtifact.Kind.REWARD_MODEL, snapshot__project=project).order_by("-created_at", "-id").first()


def selection_set(*, project: Project, selection: str, model=None) -> Project:
    """Change how the project's next items are picked, and bring the stored priorities in line
    (an UPDATE for fewest/random; a scoring job for uncertain, queued after commit)."""
    from training.models import ModelArtifact

    if selection not in Selection.values:
        raise SelectionError(f"selection: {selection!r} is not one of {', '.join(Selection.values)}")
    if model is not None and model.kind != ModelArtifact.Kind.REWARD_MODEL:
        raise SelectionError(f"selection_model: {model.name} is a {model.get_kind_display().lower()}, not a reward model")
    with transaction.atomic():
        project.selection = selection
        project.selection_model = model
        fields = ["selection", "selection_model"]
        if selection == Selection.UNCERTAIN:
            if selection_model_for(project) is None:
                raise SelectionError("selection_model: no reward model is trained on this project yet; choose one")
        else:
            project.selection_status = {}
            fields.append("selection_status")
        project.save(update_fields=fields)
        if selection == Selection.UNCERTAIN:
            priorities_refresh(project=project, reason="the setting changed")
        else:
            priorities_reset(project=project)
    return project


def priorities_refresh(*, project: Project, reason: str) -> bool:
    """Queue the scoring job for an `uncertain` project (after commit); False when the project
    orders otherwise or has no reward model. The job reads the model when it starts and scores
    every pending item, so a second request while one is queued costs a repeat, never a wrong order."""
    if project.selection != Selection.UNCERTAIN:
        return False
    model = selection_model_for(project)
    if model is None:
        return False
    status = {"state": "queued", "model": model.name, "reason": reason, "at": timezone.now().isoformat(), "scored": 0, "total": 0}
    Project.objects.filter(pk=project.pk).update(selection_status=status)
    project.selection_status = status
    from training.tasks import selection_score

    project_id = project.pk
    transaction.on_commit(lambda: selection_score.apply_async(args=[project_id], queue="gpu"))
    return True


def on_reward_model_registered(*, model) -> None:
    """A reward model was trained on a snapshot of a project: projects ordering by the newest one
    are scored again."""
    if model.snapshot_id is None:
        return
    for project in Project.objects.filter(pk=model.snapshot.project_id, selection=Selection.UNCERTAIN, selection_model__isnull=True):
        priorities_refresh(project=project, reason=f"new reward model {model.name}")


def pair_uncertainty(scores: list[float]) -> float:
    """The margin between the closest two candidates' rewards (0 when fewer than two)."""
    if len(scores) < 2:
        return 0.0
    ordered = sorted(scores)
    return float(min(b - a for a, b in zip(ordered, ordered[1:])))
