"""Inter-rater agreement, position bias and speed, computed on numpy arrays.

The one judgments -> matrix step lives here (`cells_from_values`): every judgment becomes one
or more *cells* (unit, rater, value code, consensus label). Everything else reads the cells.

What a unit and a value are, per kind (and why)
- binary:  unit = item; value = winner as a category (A, B, tie, both bad). Nominal: the four
  answers have no order.
- likert:  unit = item; value = one signed number per answer, oriented by candidate position:
  -3 = "candidate 0 much better" ... 0 = tie ... +3 = "candidate 1 much better" (a 7-point
  scale). Ordinal: "B slightly better" vs "B much better" is a smaller disagreement than
  "A much better" vs "B much better". Orienting by *position*, not by screen side, matters:
  two raters who saw the cards in opposite order but preferred the same response agree.
- rating:  unit = (item, candidate); value = the score. Ordinal.
- ranking: unit = (item, candidate); value = the candidate's rank (its tier, 0 = best). Ordinal.
  We chose per-candidate ranks over alpha on the K(K-1)/2 pairwise preferences because the pairs
  of one ranking are not independent (a > b and b > c imply a > c), so treating them as separate
  units would overstate how much evidence there is; ranks keep one unit per candidate and let
  the ordinal metric weigh "1st vs 2nd" less than "1st vs 4th". (Ranks within one item are
  still constrained to be a permutation, which biases alpha slightly for small K.)

Consensus labels, used for "agreement with the consensus", follow annotation.kinds.gold_matches:
binary compares the answer, likert the side only (A / tie / B), rating the good/bad label of each
candidate (score >= threshold), ranking whether each candidate is in the top tier. The consensus
is a leave-one-out majority: a rater's answer is compared with the strict plurality of the *other*
raters on that unit, so a rater never agrees with themselves.

Libraries: Krippendorff's alpha comes from `krippendorff` (fed with per-unit value counts, which
keeps it fast for 100,000 judgments). Fleiss' and Cohen's kappa are short numpy formulas here,
vectorised over all rater pairs at once (statsmodels is not installed, crowd-kit has neither, and
calling sklearn once per rater pair is too slow for hundreds of raters); the tests check them
against textbook examples and against sklearn.metrics.cohen_kappa_score.
"""
from __future__ import annotations

import gc
import json
import math
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from annotation.kinds import BOTH_BAD, TIE, Kind, likert_half

# Gaps between two judgments of one rater longer than this are breaks, not labelling time.
IDLE_GAP_SECONDS = 600
# Rater pairs sharing fewer units than this get no Cohen's kappa (too noisy to show).
MIN_SHARED_FOR_KAPPA = 10

WINNER_TEXT_CODES = {"0": 0, "1": 1, TIE: 2, BOTH_BAD: 3}
WINNER_LOOKUP = {**WINNER_TEXT_CODES, 0: 0, 1: 1}
BINARY_DOMAIN = ["A (candidate 0)", "B (candidate 1)", "tie", "both bad"]


@dataclass
class Cells:
    """One row per (unit, rater) answer. Codes are 0..n_values-1, in scale order where ordinal."""

    unit: np.ndarray  # int64, 0..n_units-1
    rater: np.ndarray  # int64, index into the caller's rater list
    value: np.ndarray  # int64 value code
    label: np.ndarray  # int64 consensus label code
    row: np.ndarray  # int64 index of the judgment the cell came from
    n_values: int
    n_labels: int
    level: str  # "nominal" or "ordinal"
    domain: list = field(default_factory=list)

    @property
    def n_units(self) -> int:
        return int(self.unit.max()) + 1 if len(self.unit) else 0


def scale_for(kind: str, *, likert_points: int = 7, rating_min: int = 1, rating_max: int = 5, ranking_k: int = 4) -> tuple[int, str, list]:
    """(number of value codes, level of measurement, meaning of each code) for a kind."""
    if kind == Kind.BINARY:
        return 4, "nominal", list(BINARY_DOMAIN)
    if kind == Kind.LIKERT:
        half = likert_half(likert_points)
        return 2 * half + 1, "ordinal", list(range(-half, half + 1))
    if kind == Kind.RATING:
        return rating_max - rating_min + 1, "ordinal", list(range(rating_min, rating_max + 1))
    if kind == Kind.RANKING:
        return ranking_k, "ordinal", [f"rank {i + 1}" for i in range(ranking_k)]
    raise ValueError(f"unknown kind {kind!r}")


@contextmanager
def gc_paused():
    """Pause Python's cyclic garbage collector while building many small containers (the rows
    of a 100,000-judgment query, their decoded values): each allocation burst would trigger
    a collection that walks every live object, which made decoding 6x slower. Nothing built
    here holds a reference cycle, so reference counting frees it all."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def decode_json_rows(texts) -> list:
    """Many JSON texts (values read as text from the database) decoded in one call."""
    with gc_paused():
        return json.loads("[" + ",".join(texts) + "]")


def winner_codes(winners) -> np.ndarray:
    """Winners as codes: 0 / 1 (candidate position), 2 tie, 3 both bad, -1 anything else.
    Takes canonical values or what the database returns for them (text on PostgreSQL's ->>,
    numbers or text on SQLite)."""
    lookup = WINNER_LOOKUP.get
    return np.asarray([lookup(w, -1) for w in winners], dtype=np.int64)


def cells_from_winners(kind: str, item_ids, rater_idx, winners: np.ndarray, strengths: np.ndarray, *, likert_points: int = 7) -> Cells:
    """Binary and Likert judgments -> cells, vectorised. `winners` are winner_codes() and
    `strengths` the Likert strengths (ignored for binary), parallel to item_ids and rater_idx."""
    n_values, level, domain = scale_for(kind, likert_points=likert_points)
    item_ids = np.asarray(item_ids, dtype=np.int64)
    rater_idx = np.asarray(rater_idx, dtype=np.int64)
    winners = np.asarray(winners, dtype=np.int64)
    if kind == Kind.BINARY:
        rows = np.nonzero(winners >= 0)[0]
        value = label = winners[rows]
        n_labels = 4
    else:
        half = likert_half(likert_points)
        rows = np.nonzero((winners >= 0) & (winners <= 2))[0]  # "both bad" is not a Likert answer
        w, strength = winners[rows], np.clip(np.asarray(strengths, dtype=np.int64)[rows], 0, half)
        signed = np.where(w == 0, -strength, np.where(w == 1, strength, 0))
        value = signed + half
        label = np.sign(signed) + 1  # 0: candidate 0's side, 1: tie, 2: candidate 1's side
        n_labels = 3
    _, unit = np.unique(item_ids[rows], return_inverse=True)
    return Cells(unit.astype(np.int64).reshape(-1), rater_idx[rows], value.astype(np.int64), label.astype(np.int64), rows.astype(np.int64), n_values, n_labels, level, domain)


def cells_from_values(
    kind: str,
    item_ids,
    rater_idx,
    values: list[dict],
    *,
    likert_points: int = 7,
    rating_min: int = 1,
    rating_max: int = 5,
    rating_threshold: int = 4,
    ranking_k: int = 4,
) -> Cells:
    """Canonical judgment values (annotation.kinds) -> cells. `item_ids` and `rater_idx` are
    parallel to `values`; rater_idx are small integers (index into a list of raters)."""
    item_ids = np.asarray(item_ids, dtype=np.int64)
    rater_idx = np.asarray(rater_idx, dtype=np.int64)
    if kind in (Kind.BINARY, Kind.LIKERT):
        winners = winner_codes([v.get("winner") for v in values])
        strengths = np.fromiter((int(v.get("strength") or 0) for v in values), dtype=np.int64, count=len(values))
        return cells_from_winners(kind, item_ids, rater_idx, winners, strengths, likert_points=likert_points)
    matrix = position_matrix(kind, values)
    return cells_from_matrix(kind, item_ids, rater_idx, matrix, rating_min=rating_min, rating_max=rating_max, rating_threshold=rating_threshold, ranking_k=ranking_k)


def cells_from_matrix(kind: str, item_ids, rater_idx, matrix: np.ndarray, *, rating_min: int = 1, rating_max: int = 5, rating_threshold: int = 4, ranking_k: int = 4) -> Cells:
    """Rankings and ratings -> cells, vectorised, from position_matrix()."""
    item_ids = np.asarray(item_ids, dtype=np.int64)
    rater_idx = np.asarray(rater_idx, dtype=np.int64)
    n_values, level, domain = scale_for(kind, rating_min=rating_min, rating_max=rating_max, ranking_k=ranking_k)
    rows, pos = np.nonzero(matrix != MISSING)
    if kind == Kind.RATING:
        scores = matrix[rows, pos]
        codes, labels = scores - rating_min, (scores >= rating_threshold).astype(np.int64)
    else:
        ranks = matrix[rows, pos]
        codes, labels = np.minimum(ranks, n_values - 1), (ranks == 0).astype(np.int64)
    # A unit per (item, candidate position); K <= 50 by the project settings.
    _, unit = np.unique(item_ids[rows] * 64 + pos, return_inverse=True)
    return Cells(
        unit=unit.astype(np.int64).reshape(-1),
        rater=rater_idx[rows],
        value=np.clip(codes, 0, n_values - 1).astype(np.int64),
        label=labels,
        row=rows.astype(np.int64),
        n_values=n_values,
        n_labels=2,
        level=level,
        domain=domain,
    )


MISSING = -(2**31)


def position_matrix(kind: str, values: list[dict]) -> np.ndarray:
    """Judgments x candidate positions: the score (rating) or the rank, 0 = best (ranking) each
    answer gives each candidate; MISSING where it gives none."""
    if kind == Kind.RATING:
        rows = [v.get("scores") or [] for v in values]
    else:
        tiers = [v.get("ranking") or [] for v in values]
        try:
            # The common case, rankings without ties of one length: tiers are [[p], [q], ...],
            # so the ranks are the inverse permutation of the order, computed in numpy.
            order = np.asarray([[p for (p,) in t] for t in tiers], dtype=np.int64)
        except (ValueError, TypeError):
            order = None
        if order is not None and order.ndim == 2 and order.size:
            ranks = np.empty_like(order)
            np.put_along_axis(ranks, order, np.broadcast_to(np.arange(order.shape[1]), order.shape), axis=1)
            return ranks
        rows = []
        for judgment_tiers in tiers:
            row: dict[int, int] = {}
            for tier_no, tier in enumerate(judgment_tiers):
                for pos in tier:
                    row[int(pos)] = tier_no
            rows.append([row.get(p, MISSING) for p in range(max(row) + 1)] if row else [])
    width = max((len(r) for r in rows), default=0)
    if all(len(r) == width for r in rows):
        return np.asarray(rows, dtype=np.int64).reshape(len(rows), width)
    return np.asarray([list(r) + [MISSING] * (width - len(r)) for r in rows], dtype=np.int64).reshape(len(rows), width)


def value_counts(cells: Cells, mask: np.ndarray | None = None) -> np.ndarray:
    """Units x values matrix: how many raters gave each value to each unit (pairable units only)."""
    unit, value = (cells.unit, cells.value) if mask is None else (cells.unit[mask], cells.value[mask])
    if not len(unit):
        return np.zeros((0, cells.n_values), dtype=np.int64)
    n_units = cells.n_units
    counts = np.bincount(unit * cells.n_values + value, minlength=n_units * cells.n_values).reshape(n_units, cells.n_values)
    return counts[counts.sum(axis=1) >= 2]


def _finite(x) -> float | None:
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else x


def krippendorff_alpha(counts: np.ndarray, level: str) -> float | None:
    """Krippendorff's alpha from a units x values count matrix; None where it is undefined
    (fewer than two pairable units, or every answer the same)."""
    import krippendorff

    if counts.shape[0] < 2 or (counts.sum(axis=0) > 0).sum() < 2:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        result = krippendorff.alpha(value_counts=counts, value_domain=list(range(counts.shape[1])), level_of_measurement=level)
    return _finite(result)


def fleiss_kappa(counts: np.ndarray) -> float | None:
    """Fleiss' kappa from a units x categories count matrix. Units may have different numbers of
    raters (each unit's observed agreement uses its own n); units with fewer than two are dropped.
    With a constant number of raters this is exactly Fleiss (1971)."""
    counts = np.asarray(counts, dtype=np.float64)
    n = counts.sum(axis=1)
    counts, n = counts[n >= 2], n[n >= 2]
    if len(n) == 0:
        return None
    p_unit = ((counts**2).sum(axis=1) - n) / (n * (n - 1))
    p_bar = p_unit.mean()
    p_cat = counts.sum(axis=0) / n.sum()
    p_e = (p_cat**2).sum()
    if p_e >= 1.0:
        return None
    return _finite((p_bar - p_e) / (1 - p_e))


@dataclass
class PairKappas:
    rater_a: np.ndarray
    rater_b: np.ndarray
    shared: np.ndarray
    kappa: np.ndarray  # nan where undefined


def _within_unit_pairs(cells: Cells) -> tuple[np.ndarray, np.ndarray]:
    """Indices (i, j) of every two cells on the same unit, without a Python loop over units."""
    order = np.argsort(cells.unit, kind="stable")
    unit = cells.unit[order]
    firsts, seconds = [], []
    d = 1
    while d < len(unit):
        same = unit[d:] == unit[:-d]
        if not same.any():
            break
        idx = np.nonzero(same)[0]
        firsts.append(order[idx])
        seconds.append(order[idx + d])
        d += 1
    if not firsts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    return np.concatenate(firsts), np.concatenate(seconds)


def pairwise_cohen_kappa(cells: Cells, *, min_shared: int = MIN_SHARED_FOR_KAPPA) -> PairKappas:
    """Cohen's kappa for every rater pair sharing at least `min_shared` units. Unweighted for
    nominal scales; linearly weighted for ordinal ones (as sklearn's weights="linear")."""
    i, j = _within_unit_pairs(cells)
    ra, rb, va, vb = cells.rater[i], cells.rater[j], cells.value[i], cells.value[j]
    swap = ra > rb
    ra, rb = np.where(swap, rb, ra), np.where(swap, ra, rb)
    va, vb = np.where(swap, vb, va), np.where(swap, va, vb)
    keep = ra != rb
    ra, rb, va, vb = ra[keep], rb[keep], va[keep], vb[keep]
    empty = PairKappas(*(np.zeros(0, dtype=np.int64) for _ in range(3)), np.zeros(0))
    if not len(ra):
        return empty
    n_r = int(max(ra.max(), rb.max())) + 1
    pair_keys, pair_of, shared = np.unique(ra * n_r + rb, return_inverse=True, return_counts=True)
    enough = shared >= min_shared
    if not enough.any():
        return empty
    group = np.cumsum(enough) - 1  # pair index among the kept pairs
    use = enough[pair_of]
    g, V = int(enough.sum()), cells.n_values
    conf = np.bincount(group[pair_of[use]] * V * V + va[use] * V + vb[use], minlength=g * V * V).reshape(g, V, V).astype(np.float64)
    grid = np.arange(V)
    weights = np.abs(grid[:, None] - grid[None, :]).astype(np.float64) if cells.level == "ordinal" else (grid[:, None] != grid[None, :]).astype(np.float64)
    total = conf.sum(axis=(1, 2))
    expected = conf.sum(axis=2)[:, :, None] * conf.sum(axis=1)[:, None, :] / total[:, None, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = 1.0 - (weights * conf).sum(axis=(1, 2)) / (weights * expected).sum(axis=(1, 2))
    kept_keys = pair_keys[enough]
    return PairKappas(kept_keys // n_r, kept_keys % n_r, shared[enough], kappa)


def consensus_agreement(cells: Cells) -> tuple[np.ndarray, np.ndarray]:
    """Per cell: (has_consensus, agrees) against the leave-one-out plurality of the other raters
    on the unit. A unit where the others are split evenly has no consensus for that cell."""
    L = cells.n_labels
    if not len(cells.unit):
        empty = np.zeros(0, dtype=bool)
        return empty, empty
    counts = np.bincount(cells.unit * L + cells.label, minlength=cells.n_units * L).reshape(cells.n_units, L)
    others = counts[cells.unit]
    others[np.arange(len(cells.label)), cells.label] -= 1
    top = others.max(axis=1)
    unique_top = (others == top[:, None]).sum(axis=1) == 1
    has = (top > 0) & unique_top
    agrees = has & (others.argmax(axis=1) == cells.label)
    return has, agrees


def first_card_picks_pairwise(winners: np.ndarray, first_positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """first_card_picks for binary and Likert, vectorised: winner_codes() and the candidate
    position shown first (-1 where unknown)."""
    counted = ((winners == 0) | (winners == 1)) & (first_positions >= 0)
    return counted, counted & (winners == first_positions)


def first_card_picks(kind: str, values: list[dict], display_orders: list, *, matrix: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per judgment: (counted, picked_first). A judgment counts when it names a single best
    candidate (not a tie, not 'both bad', not a tied top tier or top score) and the on-screen
    order is known; picked_first says whether that candidate was the left / first card.
    `display_orders` are the on-screen orders, or just the first position of each (-1: unknown);
    `matrix` is position_matrix(kind, values) where the caller has it already."""
    firsts = np.asarray([(o[0] if o else -1) if isinstance(o, (list, tuple)) else (-1 if o is None else int(o)) for o in display_orders], dtype=np.int64)
    if kind in (Kind.BINARY, Kind.LIKERT):
        return first_card_picks_pairwise(winner_codes([v.get("winner") for v in values]), firsts)
    matrix = position_matrix(kind, values) if matrix is None else matrix
    if not matrix.size:
        return np.zeros(len(firsts), dtype=bool), np.zeros(len(firsts), dtype=bool)
    given = matrix != MISSING
    if kind == Kind.RANKING:
        top = given & (matrix == 0)
    else:
        best_score = np.where(given, matrix, MISSING).max(axis=1)
        top = given & (matrix == best_score[:, None])
    counted = (top.sum(axis=1) == 1) & (firsts >= 0)
    return counted, counted & (top.argmax(axis=1) == firsts)


def active_seconds(times: np.ndarray, typical_seconds: float) -> float:
    """Labelling time of one rater from the timestamps (epoch seconds) of their judgments: a gap
    up to IDLE_GAP_SECONDS is the time spent on the next judgment; a longer gap is a break and
    starts a new session, whose first judgment counts as one typical judgment."""
    if not len(times):
        return 0.0
    gaps = np.diff(np.sort(times))
    working = gaps <= IDLE_GAP_SECONDS
    sessions = 1 + int((~working).sum())
    return float(gaps[working].sum()) + sessions * typical_seconds


def per_group_median(group: np.ndarray, x: np.ndarray, n_groups: int) -> np.ndarray:
    """Median of x (nan ignored) per group index; nan where a group has no values."""
    out = np.full(n_groups, np.nan)
    ok = ~np.isnan(x)
    group, x = group[ok], x[ok]
    if not len(x):
        return out
    order = np.lexsort((x, group))
    group, x = group[order], x[order]
    starts = np.searchsorted(group, np.arange(n_groups), side="left")
    ends = np.searchsorted(group, np.arange(n_groups), side="right")
    for g in np.nonzero(ends > starts)[0]:
        out[g] = np.median(x[starts[g] : ends[g]])
    return out
