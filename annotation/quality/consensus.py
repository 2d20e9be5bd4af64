"""Combining several judgments of one item into one answer (the consensus).

Two methods:
- majority: every judgment is one vote (optionally weighted per rater). Binary and Likert vote on
  the winner (0, 1, "tie", "both_bad"); a ranking's consensus orders candidates by their mean tier;
  a rating's consensus is the median score of each candidate.
- dawid_skene: a reliability-weighted model (crowd-kit's DawidSkene) fitted on every judgment of
  the project at once. It learns each rater's confusion matrix, so a careful rater outvotes two
  careless ones. Used for the winner of binary and Likert judgments; other kinds fall back to
  majority (a ranking or a score vector is not one categorical label).

The consensus is returned as a value in the *canonical form of its kind* (annotation.kinds), so
the same kinds.comparisons / unpaired_labels / best_positions turn it into training rows.

Public API (also used by the quality pages):

    item_consensus(kind, values, weights=None, forced_winner=None) -> Consensus | None
    dawid_skene_winners(triples) -> {item_key: (winner, posterior)}   # (item_key, rater_key, winner)
    consensus_by_item(kind, rows, method="majority") -> {item_key: Consensus}   # (item_key, rater_key, value)

`agreement` is the (weighted) share of the
item's judgments that agree with the consensus, 1.0 when everyone agrees.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from statistics import median
from typing import Any, Hashable, Iterable, Sequence

from annotation.kinds import Kind

MAJORITY = "majority"
DAWID_SKENE = "dawid_skene"
METHODS = (MAJORITY, DAWID_SKENE)


@dataclass(frozen=True)
class Consensus:
    value: dict  # canonical value of the kind
    agreement: float  # share of the (weighted) votes that agree with `value`
    n: int  # judgments combined
    confidence: float | None = None  # posterior probability, for the reliability-weighted model


def _binary_like(kind: str, values: Sequence[dict], weights: Sequence[float], forced_winner: Any = None) -> Consensus | None:
    totals: dict[Any, float] = defaultdict(float)
    for value, w in zip(values, weights):
        totals[value["winner"]] += w
    total = sum(totals.values())
    if not total:
        return None
    if forced_winner is not None:
        winner = forced_winner
    else:
        ranked = sorted(totals.items(), key=lambda kv: -kv[1])
        # An even split has no consensus: better no row than a coin flip.
        if len(ranked) > 1 and abs(ranked[0][1] - ranked[1][1]) < 1e-9:
            return None
        winner = ranked[0][0]
    agreement = totals.get(winner, 0.0) / total
    if kind == Kind.LIKERT:
        strengths = [v["strength"] for v in values if v["winner"] == winner]
        strength = int(round(median(strengths))) if strengths else 0
        if winner in (0, 1):
            strength = max(1, strength)
        return Consensus({"winner": winner, "strength": strength}, agreement, len(values))
    return Consensus({"winner": winner}, agreement, len(values))


def _ranking(values: Sequence[dict], weights: Sequence[float]) -> Consensus | None:
    sums: dict[int, float] = defaultdict(float)
    total = sum(weights)
    if not total:
        return None
    for value, w in zip(values, weights):
        for tier_index, tier in enumerate(value["ranking"]):
            for position in tier:
                sums[position] += w * tier_index
    mean_tier = {p: s / total for p, s in sums.items()}
    tiers: list[list[int]] = []
    for position in sorted(mean_tier, key=lambda p: (mean_tier[p], p)):
        if tiers and abs(mean_tier[tiers[-1][0]] - mean_tier[position]) < 1e-9:
            tiers[-1].append(position)
        else:
            tiers.append([position])
    top = sorted(tiers[0])
    agreeing = sum(w for value, w in zip(values, weights) if sorted(value["ranking"][0]) == top)
    return Consensus({"ranking": tiers}, agreeing / total, len(values))


def _rating(values: Sequence[dict], weights: Sequence[float], rating_threshold: int) -> Consensus | None:
    n_candidates = len(values[0]["scores"])
    if any(len(v["scores"]) != n_candidates for v in values):
        return None
    total = sum(weights)
    if not total:
        return None
    # Median, not mean: one rater's extreme score should not move the label.
    scores = [int(round(median(v["scores"][p] for v in values))) for p in range(n_candidates)]
    # Agreement on what matters downstream: each candidate's good/bad label.
    shares = []
    for p in range(n_candidates):
        label = scores[p] >= rating_threshold
        shares.append(sum(w for v, w in zip(values, weights) if (v["scores"][p] >= rating_threshold) == label) / total)
    return Consensus({"scores": scores}, sum(shares) / len(shares), len(values))


def item_consensus(
    kind: str,
    values: Sequence[dict],
    *,
    weights: Sequence[float] | None = None,
    rating_threshold: int = 4,
    forced_winner: Any = None,
) -> Consensus | None:
    """The consensus of one item's judgments (canonical values of one kind), or None when the
    votes are split evenly. `forced_winner` lets a model (Dawid–Skene) pick the binary/Likert
    winner while agreement is still the share of votes for it."""
    if not values:
        return None
    weights = list(weights) if weights is not None else [1.0] * len(values)
    if kind in (Kind.BINARY, Kind.LIKERT):
        return _binary_like(kind, values, weights, forced_winner)
    if kind == Kind.RANKING:
        return _ranking(values, weights)
    if kind == Kind.RATING:
        return _rating(values, weights, rating_threshold)
    raise ValueError(f"unknown kind {kind!r}")


def dawid_skene_winners(rows: Iterable[tuple[Hashable, Hashable, Any]], *, n_iter: int = 100) -> dict[Hashable, tuple[Any, float]]:
    """Fit Dawid–Skene on (item_key, rater_key, winner) triples; return item_key -> (winner, posterior).

    Winners are 0, 1, "tie" or "both_bad". Integer codes keep the frame small at a million rows.
    """
    import numpy as np
    import pandas as pd
    from crowdkit.aggregation import DawidSkene

    items: list[Hashable] = []
    item_index: dict[Hashable, int] = {}
    raters: dict[Hashable, int] = {}
    labels: dict[Any, int] = {}
    task_col, worker_col, label_col = [], [], []
    for item_key, rater_key, winner in rows:
        if item_key not in item_index:
            item_index[item_key] = len(items)
            items.append(item_key)
        task_col.append(item_index[item_key])
        worker_col.append(raters.setdefault(rater_key, len(raters)))
        label_col.append(labels.setdefault(winner, len(labels)))
    if not task_col:
        return {}
    decode = {code: label for label, code in labels.items()}
    if len(labels) == 1:
        only = decode[0]
        return {key: (only, 1.0) for key in items}
    frame = pd.DataFrame(
        {"task": np.asarray(task_col, dtype=np.int64), "worker": np.asarray(worker_col, dtype=np.int64), "label": np.asarray(label_col, dtype=np.int64)}
    )
    del task_col, worker_col, label_col
    model = DawidSkene(n_iter=n_iter).fit(frame)
    probas = model.probas_
    best = probas.idxmax(axis=1)
    confidence = probas.max(axis=1)
    return {items[int(task)]: (decode[int(best[task])], float(confidence[task])) for task in probas.index}


def consensus_by_item(
    kind: str,
    rows: Iterable[tuple[Hashable, Hashable, dict]],
    *,
    method: str = MAJORITY,
    rating_threshold: int = 4,
) -> dict[Hashable, Consensus]:
    """The consensus of every item in `rows` ((item_key, rater_key, value) triples). Items whose
    votes split evenly are left out. Holds all rows in memory: for a project-wide statistic,
    not for the snapshot build (which streams item by item)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}")
    by_item: dict[Hashable, list[dict]] = defaultdict(list)
    triples = []
    for item_key, rater_key, value in rows:
        by_item[item_key].append(value)
        triples.append((item_key, rater_key, value))
    forced: dict[Hashable, tuple[Any, float]] = {}
    if method == DAWID_SKENE and kind in (Kind.BINARY, Kind.LIKERT):
        forced = dawid_skene_winners((i, r, v["winner"]) for i, r, v in triples)
    result = {}
    for item_key, values in by_item.items():
        winner, confidence = forced.get(item_key, (None, None))
        found = item_consensus(kind, values, rating_threshold=rating_threshold, forced_winner=winner)
        if found is not None:
            if confidence is not None:
                found = Consensus(found.value, found.agreement, found.n, confidence)
            result[item_key] = found
    return result

