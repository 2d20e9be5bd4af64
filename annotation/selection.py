"""Which item a rater gets next (DESIGN.md, "The loop": active selection).

The claim (annotation/assignment.py) takes the first free row of the index
item_next_idx (project, is_gold, taken, priority, id): items with the fewest judgments and leases
first, and among those the lowest `priority`. A project's `selection` decides what the priority
holds, so that every ordering stays the same index range scan with LIMIT 1 at any size:

- fewest:    0 for every item: oldest first (the id), as before priorities existed;
- random:    a random number drawn when the item is imported (or when the setting changes);
- uncertain: the reward model's margin between the item's closest two candidates, |r_a - r_b|
             (smallest first: the pairs the model is least sure of). Items not scored yet have 0,
             so they come first: nothing is known of them. The model and its scoring job belong
             to training (annotation.hooks.uncertainty, filled by training/selection/): the job
             scores every pending item when the setting is chosen, after an import, when a newer
             reward model of the project is registered, or on demand.

Gold items keep priority 0: their order must not depend on a model.
"""
from __future__ import annotations

import random

from django.db import connection, transaction
from django.utils import timezone

from annotation import hooks
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


def selection_set(*, project: Project, selection: str, model_id: int | None = None, weights=None, user=None) -> Project:
    """Change how the project's next items are picked, and bring the stored priorities in line
    (an UPDATE for fewest/random; a scoring job for uncertain, queued after commit). `model_id`
    is the reward model for uncertain (None: the newest trained on the project), kept by the
    scorer that training installs (annotation.hooks.uncertainty), among those `user` may choose
    for this project (None: an operator at the shell). `weights`: how a multi-objective model's
    heads combine, raw as the person gave them (a dict or "helpfulness=1, verbosity=-0.5"; None:
    the model's own); the scorer parses and checks them against the model's heads, since only
    training knows what a model's heads are. Every call replaces both (the form and a PUT send all)."""
    if selection not in Selection.values:
        raise SelectionError(f"selection: {selection!r} is not one of {', '.join(Selection.values)}")
    scorer = hooks.uncertainty
    with transaction.atomic():
        project.selection = selection
        fields = ["selection"]
        if scorer is not None:
            scorer.model_choose(project=project, model_id=model_id, user=user, weights=weights)
        elif model_id is not None or selection == Selection.UNCERTAIN:
            raise SelectionError("selection_model: no reward-model scorer is installed (the training app)")
        elif weights not in (None, "", {}) and not (isinstance(weights, str) and not weights.strip()):
            raise SelectionError("selection_weights: no reward-model scorer is installed (the training app)")
        if selection == Selection.UNCERTAIN:
            if scorer.model_effective(project=project) is None:
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
    scorer = hooks.uncertainty
    if project.selection != Selection.UNCERTAIN or scorer is None:
        return False
    model = scorer.model_effective(project=project)
    if model is None:
        return False
    status = {"state": "queued", "model": model, "reason": reason, "at": timezone.now().isoformat(), "scored": 0, "total": 0}
    Project.objects.filter(pk=project.pk).update(selection_status=status)
    project.selection_status = status
    scorer.queue(project_id=project.pk)
    return True
