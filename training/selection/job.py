"""The scoring job behind "most uncertain first" (annotation/selection.py): a reward model scores
the candidates of every pending item of a project, and each item's priority becomes the margin
between its closest two candidates. Runs on the gpu queue; torch only inside the functions.

The job is safe to run twice or late: it reads the project's setting and model when it starts,
does nothing for a project that no longer orders by uncertainty, and writes only priorities
(a redelivered job rescoring the same items writes the same numbers)."""
from __future__ import annotations

import logging
import time

from django.db.models import F
from django.utils import timezone

from annotation.models import Candidate, Item, Project
from annotation.selection import Selection
from training.selection.services import selection_model_for, selection_weights_for

log = logging.getLogger(__name__)
ITEMS_PER_BATCH = 256


def pair_uncertainty(scores: list[float]) -> float:
    """The margin between the closest two candidates' rewards (0 when fewer than two)."""
    if len(scores) < 2:
        return 0.0
    ordered = sorted(scores)
    return float(min(b - a for a, b in zip(ordered, ordered[1:])))


def _status(project_id: int, **fields) -> None:
    project = Project.objects.only("selection_status").get(pk=project_id)
    status = dict(project.selection_status or {})
    status.update(fields, at=timezone.now().isoformat())
    Project.objects.filter(pk=project_id).update(selection_status=status)


def priorities_score(*, project_id: int, batch_size: int = 16, weights: dict[str, float] | None = None) -> str:
    """Score every pending item of the project; returns what it did ("skipped", "done: N items").
    `weights`: how a multi-objective reward model's heads combine (None: the project's stored
    selection weights, read when the job starts like the model; none stored: the model's own)."""
    from training.core.heads import WeightsError, weights_check
    from training.core.scorer import model_heads, reward_scores
    from training.registry.loading import reward_model_loaded

    project = Project.objects.filter(pk=project_id).first()
    if project is None or project.selection != Selection.UNCERTAIN:
        return "skipped"
    model = selection_model_for(project)
    if model is None:
        _status(project_id, state="failed", error="no reward model is trained on this project yet")
        return "skipped"
    pending = Item.objects.filter(project=project, is_gold=False, judgment_count__lt=F("project__overlap"))
    if weights is None:
        weights = selection_weights_for(project) or None
    total = pending.count()
    _status(project_id, state="running", model=model.name, weights=weights or {}, scored=0, total=total, error="")
    started = time.monotonic()
    try:
        net, tokenizer = reward_model_loaded(model)
        try:
            # Checked when chosen; checked again here, since "the newest model" may have changed since.
            weights_check(model_heads(net), weights, field="selection_weights", model=model.name)
        except WeightsError as exc:
            _status(project_id, state="failed", error=str(exc)[:500])
            return "skipped"
        scored, last_id = 0, 0
        while True:
            items = list(pending.filter(id__gt=last_id).order_by("id").only("id", "prompt")[:ITEMS_PER_BATCH])
            if not items:
                break
            last_id = items[-1].id
            by_item: dict[int, list[str]] = {}
            for c in Candidate.objects.filter(item_id__in=[i.id for i in items]).order_by("item_id", "position").only("item_id", "text"):
                by_item.setdefault(c.item_id, []).append(c.text)
            prompts, responses, owners = [], [], []
            for item in items:
                texts = by_item.get(item.id, [])
                prompts += [item.prompt] * len(texts)
                responses += texts
                owners += [item.id] * len(texts)
            # Chat and text prompts mixed, each pair cut to the model's own positions (the one scorer).
            scores = reward_scores(net, tokenizer, prompts, responses, batch_size=batch_size, weights=weights).cpu().tolist()
            per_item: dict[int, list[float]] = {}
            for owner, value in zip(owners, scores):
                per_item.setdefault(owner, []).append(value)
            for item in items:
                item.priority = pair_uncertainty(per_item.get(item.id, []))
            Item.objects.bulk_update(items, ["priority"], batch_size=1000)
            scored += len(items)
            _status(project_id, scored=scored)
    except Exception as exc:
        log.exception("selection scoring of project %s failed", project_id)
        _status(project_id, state="failed", error=f"{type(exc).__name__}: {exc}"[:500])
        raise
    _status(project_id, state="done", scored=scored, seconds=round(time.monotonic() - started, 1))
    return f"done: {scored} items"
