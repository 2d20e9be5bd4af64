"""Agreement on a project's questions (annotation.questions): alpha, per rater, and gold.

The primary judgment has its own figures (annotation.quality.agreement / figures); this module
measures each scale and labels question beside it. Text questions have no agreement figure.

Units and levels of measurement (and why)
- scale: unit = (item, response position) for a per-response question, the item for a per-item
  one; value = the score. Ordinal: on HelpSteer's 0-4, "3 vs 4" is a smaller disagreement than
  "0 vs 4", and the ordinal metric does not assume the points are equally spaced.
- labels: each label is its own binary nominal variable ("applies" / "does not") on the same
  units; alpha per label. We chose this over one alpha on the label set because it says *which*
  categories raters can apply reliably (a rare "self_harm" label can be unusable while
  "violence" is fine), and it is exactly the nominal alpha everyone knows. For one number per
  question we add alpha on the whole set with the Jaccard distance (1 - |A & B| / |A | B|, two
  empty sets 0), which credits partial overlap; the exact-set nominal alpha would count
  {violence} vs {violence, hate} as a full disagreement.
Alpha itself comes from the `krippendorff` package (as for the primary kind); its 95 % interval
is a percentile bootstrap over *items* like the AI agreement (annotation.quality.ai_agreement):
items drawn with replacement, so an item's responses stay together, 1,000 resamples (200 above
5,000 items), fixed seed. A resample is a weighted sum of per-item coincidence matrices, so the
bootstrap is one matrix product instead of a thousand calls to the package.

Per rater (leave-one-out, so a rater never agrees with themselves)
- scale: mean absolute distance of the rater's score to the mean of the *other* raters' scores
  on the same unit, over the units someone else answered too (0 = always where the others are).
- labels: per-label agreement with the strict majority of the other raters on the unit (a unit
  where the others split evenly on that label is left out); pooled over labels and per label.

Gold: a gold item's `gold` dict may carry `"answers"` in canonical form. Scales count as correct
within +-1 point (`GOLD_TOLERANCE`; HelpSteer's own raters differ by one point often enough
that an exact match would mostly measure noise); the exact-match share is given beside it.
Labels count as correct when the set is exactly the gold set; the per-label share is beside it.
"""
from __future__ import annotations

import numpy as np

from annotation.questions import LABELS, PER_ITEM, SCALE, declared
from annotation.quality import agreement

GOLD_TOLERANCE = 1
RESAMPLES, RESAMPLES_LARGE, LARGE = 1000, 200, 5000
# The bootstrap holds items x values^2 numbers; a label set with more distinct answers than this
# gets its alpha without an interval.
MAX_SET_VALUES = 48
INTERVALS = "95% percentile bootstrap over items"


def _round(x, digits: int = 3):
    return None if x is None or not np.isfinite(x) else round(float(x), digits)


# ---------------------------------------------------------------- alpha from coincidences


def _unit_counts(unit: np.ndarray, value: np.ndarray, n_values: int) -> tuple[np.ndarray, np.ndarray]:
    """(units x values counts of the units with >= 2 answers, the index of each kept unit)."""
    if not len(unit):
        return np.zeros((0, n_values), dtype=np.int64), np.zeros(0, dtype=np.int64)
    n_units = int(unit.max()) + 1
    counts = np.bincount(unit * n_values + value, minlength=n_units * n_values).reshape(n_units, n_values)
    kept = np.nonzero(counts.sum(axis=1) >= 2)[0]
    return counts[kept], kept


def item_coincidences(counts: np.ndarray, item_of_unit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per item, the sum of its units' coincidence matrices (Krippendorff's o_ck), flattened:
    (items x values^2, the item ids). counts are units x values with >= 2 answers each."""
    V = counts.shape[1]
    m = counts.sum(axis=1).astype(np.float64)
    per_unit = (counts[:, :, None] * counts[:, None, :]).astype(np.float64)
    per_unit[:, np.arange(V), np.arange(V)] -= counts
    per_unit /= (m - 1.0)[:, None, None]
    items, item_idx = np.unique(item_of_unit, return_inverse=True)
    out = np.zeros((len(items), V * V))
    np.add.at(out, item_idx.reshape(-1), per_unit.reshape(len(counts), V * V))
    return out, items


def _ordinal_distances(n_v: np.ndarray) -> np.ndarray:
    """Krippendorff's ordinal metric for one or a stack of marginals n_v (..., V) -> (..., V, V)."""
    V = n_v.shape[-1]
    cum = np.concatenate([np.zeros(n_v.shape[:-1] + (1,)), np.cumsum(n_v, axis=-1)], axis=-1)
    lo = np.minimum.outer(np.arange(V), np.arange(V))
    hi = np.maximum.outer(np.arange(V), np.arange(V))
    between = cum[..., hi + 1] - cum[..., lo]
    return (between - (n_v[..., :, None] + n_v[..., None, :]) / 2.0) ** 2


def alpha_from_coincidences(o: np.ndarray, level: str, distances: np.ndarray | None = None) -> np.ndarray:
    """Alpha of one (V, V) or a stack (B, V, V) of coincidence matrices; nan where undefined.
    level "ordinal" or "nominal"; any other level needs its fixed `distances` (V, V)."""
    o = np.asarray(o, dtype=np.float64)
    single = o.ndim == 2
    o = o[None] if single else o
    V = o.shape[-1]
    n_v = o.sum(axis=2)
    n = n_v.sum(axis=1)
    if level == "ordinal":
        d = _ordinal_distances(n_v)
    elif level == "nominal":
        d = np.broadcast_to(1.0 - np.eye(V), o.shape)
    else:
        d = np.broadcast_to(distances, o.shape)
    observed = (o * d).sum(axis=(1, 2))
    expected = np.einsum("bc,bck,bk->b", n_v, d, n_v)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.where(expected > 1e-12, 1.0 - (n - 1.0) * observed / expected, np.nan)
    return alpha[0] if single else alpha


def package_alpha(counts: np.ndarray, level: str, distances: np.ndarray | None = None) -> float | None:
    """The point estimate, from the `krippendorff` package (a custom distance as its metric)."""
    if level in ("ordinal", "nominal"):
        return agreement.krippendorff_alpha(counts, level)
    import krippendorff

    if counts.shape[0] < 2 or (counts.sum(axis=0) > 0).sum() < 2:
        return None

    def metric(v1, v2, i1, i2, n_v, dtype=np.float64):
        return distances[i1, i2].astype(dtype)

    with np.errstate(divide="ignore", invalid="ignore"):
        result = krippendorff.alpha(value_counts=counts, value_domain=list(range(counts.shape[1])), level_of_measurement=metric)
    return _round(result, 12)


def resample_weights(n: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples x n) how often each of n items is drawn in each resample with replacement: a
    multinomial, drawn as uniform indices and counted (numpy's multinomial over 10,000 items
    draws one binomial per item and took most of the time)."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n, size=(resamples, n)) + (np.arange(resamples) * n)[:, None]
    return np.bincount(picks.reshape(-1), minlength=resamples * n).reshape(resamples, n).astype(np.float64)


def alpha_figure(
    unit: np.ndarray, item_of_unit: np.ndarray, value: np.ndarray, n_values: int, level: str, *, distances: np.ndarray | None = None, seed: int = 0, memo: dict | None = None
) -> dict:
    """Alpha with its 95 % bootstrap interval and its n: `unit` and `value` per answer,
    `item_of_unit` the item of each unit index. `memo` keeps the resample weights for the
    next call (a labels question's per-label alphas resample the same items)."""
    counts, kept = _unit_counts(unit, value, n_values)
    out = {"alpha": None, "alpha_ci": None, "pairable_units": int(len(kept)), "pairable_items": 0}
    if not len(kept):
        return out
    per_item, items = item_coincidences(counts, item_of_unit[kept])
    out["pairable_items"] = int(len(items))
    out["alpha"] = _round(package_alpha(counts, level, distances))
    if out["alpha"] is None or len(items) < 2 or (level not in ("ordinal", "nominal") and n_values > MAX_SET_VALUES):
        return out
    B = RESAMPLES if len(items) <= LARGE else RESAMPLES_LARGE
    memo = {} if memo is None else memo
    if (len(items), B, seed) not in memo:
        memo.clear()  # one set of weights at a time: 200 x 50,000 items is 80 MB
        memo[(len(items), B, seed)] = resample_weights(len(items), B, seed)
    weights = memo[(len(items), B, seed)]
    boot = alpha_from_coincidences((weights @ per_item).reshape(B, n_values, n_values), level, distances)
    if np.isfinite(boot).any():
        out["alpha_ci"] = [_round(np.nanpercentile(boot, 2.5)), _round(np.nanpercentile(boot, 97.5))]
    return out


def jaccard_distances(masks: np.ndarray) -> np.ndarray:
    """1 - |A & B| / |A | B| between label sets given as bit masks (two empty sets: 0)."""
    bits = ((masks[:, None] >> np.arange(32)) & 1).astype(np.int64)
    inter = bits @ bits.T
    union = bits.sum(axis=1)[:, None] + bits.sum(axis=1)[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, 1.0 - inter / np.maximum(union, 1), 0.0)


# ---------------------------------------------------------------- answers -> cells


def _score(q: dict, raw) -> int | None:
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    return raw if type(raw) is int and q["min"] <= raw <= q["max"] else None


def _mask(q: dict, raw, memo: dict) -> int | None:
    """The bit mask of a label set (None: not a list of the question's choices). Few distinct
    sets occur, so each is worked out once (`memo`)."""
    if not isinstance(raw, list):
        return None
    key = tuple(raw) if all(isinstance(c, str) for c in raw) else None
    if key is None:
        return None
    if key not in memo:
        index = {c: i for i, c in enumerate(q["choices"])}
        memo[key] = sum(1 << index[c] for c in set(key)) if all(c in index for c in key) else None
    return memo[key]


def answer_cells(q: dict, answer, memo: dict | None = None) -> list[tuple[int, int]]:
    """(position, code) pairs of one canonical answer (position 0 for a per-item question);
    code is score - min for a scale, the bit mask of the chosen labels for labels. Anything not
    in canonical form (a hand-edited gold dict) is skipped, never an error."""
    memo = {} if memo is None else memo
    read = (lambda raw: None if (s := _score(q, raw)) is None else s - q["min"]) if q["type"] == SCALE else (lambda raw: _mask(q, raw, memo))
    if q["per"] == PER_ITEM:
        code = read(answer)
        return [] if code is None else [(0, code)]
    if not isinstance(answer, list):
        return []
    return [(p, code) for p, raw in enumerate(answer) if (code := read(raw)) is not None]


def _scale_matrix(q: dict, answers: list) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Scale answers as (answer index, position, code) arrays in numpy, when every answer has
    the same shape (the common case: one score per item, or K per response); None otherwise."""
    try:
        matrix = np.asarray(answers, dtype=np.float64)  # None -> nan
    except (TypeError, ValueError):
        return None
    if matrix.ndim != (1 if q["per"] == PER_ITEM else 2):
        return None
    matrix = matrix.reshape(len(answers), -1)
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(matrix) & (matrix == np.floor(matrix)) & (matrix >= q["min"]) & (matrix <= q["max"])
    rows, pos = np.nonzero(valid)
    return rows, pos, (matrix[rows, pos] - q["min"]).astype(np.int64)


class QuestionCells:
    """Every answer to one question: parallel arrays, one row per (judgment, position) answered."""

    def __init__(self, q: dict, rows: list[tuple[int, int, dict]], gold: dict[int, dict]):
        self.q = q
        key = q["key"]
        taken = [(item_id, rater, answers[key]) for item_id, rater, answers in rows if key in answers]
        fast = _scale_matrix(q, [a for _, _, a in taken]) if q["type"] == SCALE and taken else None
        if fast is not None:
            index, positions, self.code = fast
            self.item = np.fromiter((t[0] for t in taken), dtype=np.int64, count=len(taken))[index]
            self.rater = np.fromiter((t[1] for t in taken), dtype=np.int64, count=len(taken))[index]
        else:
            memo: dict = {}
            cells = [(item_id, rater, pos, code) for item_id, rater, answer in taken for pos, code in answer_cells(q, answer, memo)]
            columns = list(zip(*cells)) if cells else [(), (), (), ()]
            self.item, self.rater, positions, self.code = (np.asarray(c, dtype=np.int64) for c in columns)
        # A unit per (item, position); K <= 50 by the project settings.
        cell_keys = self.item * 64 + np.asarray(positions, dtype=np.int64)
        keys, unit = np.unique(cell_keys, return_inverse=True)
        self.unit = unit.astype(np.int64).reshape(-1)
        self.item_of_unit = keys // 64
        # The gold answer of each cell, -1 where there is none.
        expected = {item_id * 64 + pos: code for item_id, answers in gold.items() if key in answers for pos, code in answer_cells(q, answers[key])}
        self.gold = np.full(len(self.code), -1, dtype=np.int64)
        if expected and len(cell_keys):
            gold_keys = np.fromiter(expected, dtype=np.int64, count=len(expected))
            gold_codes = np.fromiter(expected.values(), dtype=np.int64, count=len(expected))
            order = np.argsort(gold_keys)
            gold_keys, gold_codes = gold_keys[order], gold_codes[order]
            at = np.minimum(np.searchsorted(gold_keys, cell_keys), len(gold_keys) - 1)
            self.gold = np.where(gold_keys[at] == cell_keys, gold_codes[at], -1)

    def __len__(self) -> int:
        return len(self.code)


def _per_rater(values: np.ndarray, rater: np.ndarray, n_raters: int) -> tuple[np.ndarray, np.ndarray]:
    """(sum, count) of values per rater, nan values left out."""
    ok = ~np.isnan(values)
    return np.bincount(rater[ok], weights=values[ok], minlength=n_raters), np.bincount(rater[ok], minlength=n_raters)


def _share(total, n):
    return _round(total / n) if n else None


def scale_figures(cells: QuestionCells, rater_idx: np.ndarray, n_raters: int, *, seed: int = 0, memo: dict | None = None) -> tuple[dict, list[dict]]:
    """(question figures, one dict per rater index) of a scale question."""
    q = cells.q
    V = q["max"] - q["min"] + 1
    figures = alpha_figure(cells.unit, cells.item_of_unit, cells.code, V, "ordinal", seed=seed, memo=memo)
    n_units = int(cells.unit.max()) + 1 if len(cells) else 0
    unit_sum = np.bincount(cells.unit, weights=cells.code, minlength=n_units)
    unit_n = np.bincount(cells.unit, minlength=n_units)
    others_n = unit_n[cells.unit] - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        others_mean = np.where(others_n > 0, (unit_sum[cells.unit] - cells.code) / np.maximum(others_n, 1), np.nan)
    distance = np.abs(cells.code - others_mean)
    has_gold = cells.gold >= 0
    within = np.where(has_gold, np.abs(cells.code - cells.gold) <= GOLD_TOLERANCE, False)
    exact = np.where(has_gold, cells.code == cells.gold, False)
    compared = ~np.isnan(distance)
    figures.update(
        {
            "mean": _round(cells.code.mean() + q["min"]) if len(cells) else None,
            "mean_abs_distance": _round(distance[compared].mean()) if compared.any() else None,
            "compared": int(compared.sum()),
            "gold_answered": int(has_gold.sum()),
            "gold_accuracy": _share(within.sum(), has_gold.sum()),
            "gold_exact": _share(exact.sum(), has_gold.sum()),
        }
    )
    d_sum, d_n = _per_rater(distance, rater_idx, n_raters)
    answers = np.bincount(rater_idx, minlength=n_raters)
    g_n = np.bincount(rater_idx, weights=has_gold, minlength=n_raters)
    g_ok = np.bincount(rater_idx, weights=within, minlength=n_raters)
    g_exact = np.bincount(rater_idx, weights=exact, minlength=n_raters)
    per_rater = [
        {
            "answers": int(answers[r]),
            "distance_to_others": _share(d_sum[r], d_n[r]),
            "compared": int(d_n[r]),
            "gold_answered": int(g_n[r]),
            "gold_accuracy": _share(g_ok[r], g_n[r]),
            "gold_exact": _share(g_exact[r], g_n[r]),
        }
        for r in range(n_raters)
    ]
    return figures, per_rater


def label_figures(cells: QuestionCells, rater_idx: np.ndarray, n_raters: int, *, seed: int = 0, memo: dict | None = None) -> tuple[dict, list[dict]]:
    """(question figures, one dict per rater index) of a labels question."""
    q = cells.q
    choices = q["choices"]
    n_units = int(cells.unit.max()) + 1 if len(cells) else 0
    unit_n = np.bincount(cells.unit, minlength=n_units)
    others_n = unit_n[cells.unit] - 1
    has_gold = cells.gold >= 0
    answers = np.bincount(rater_idx, minlength=n_raters)
    agree_n = np.zeros((n_raters, len(choices)))
    agree_ok = np.zeros((n_raters, len(choices)))
    gold_bits_ok = np.zeros(n_raters)
    labels = []
    for c, choice in enumerate(choices):
        bit = (cells.code >> c) & 1
        figure = alpha_figure(cells.unit, cells.item_of_unit, bit, 2, "nominal", seed=seed, memo=memo)
        figure["label"] = choice
        figure["prevalence"] = _round(bit.mean()) if len(cells) else None
        labels.append(figure)
        # Leave-one-out majority of the others on this label; an even split is no majority.
        others_yes = np.bincount(cells.unit, weights=bit, minlength=n_units)[cells.unit] - bit
        decided = (others_n > 0) & (2 * others_yes != others_n)
        agrees = decided & ((2 * others_yes > others_n) == (bit == 1))
        agree_n[:, c] = np.bincount(rater_idx, weights=decided, minlength=n_raters)
        agree_ok[:, c] = np.bincount(rater_idx, weights=agrees, minlength=n_raters)
        gold_bits_ok += np.bincount(rater_idx, weights=has_gold & (bit == ((cells.gold >> c) & 1)), minlength=n_raters)
    figures = {}
    masks, code = np.unique(cells.code, return_inverse=True)
    if len(masks):
        figures = alpha_figure(cells.unit, cells.item_of_unit, code.reshape(-1), len(masks), "jaccard", distances=jaccard_distances(masks), seed=seed, memo=memo)
    else:
        figures = alpha_figure(cells.unit, cells.item_of_unit, cells.code, 1, "nominal")
    exact = has_gold & (cells.code == cells.gold)
    g_n = np.bincount(rater_idx, weights=has_gold, minlength=n_raters)
    g_exact = np.bincount(rater_idx, weights=exact, minlength=n_raters)
    figures.update(
        {
            "labels": labels,
            "agreement": _share(agree_ok.sum(), agree_n.sum()),
            "compared": int(agree_n.sum()),
            "gold_answered": int(has_gold.sum()),
            "gold_accuracy": _share(exact.sum(), has_gold.sum()),
            "gold_per_label": _share(gold_bits_ok.sum(), has_gold.sum() * len(choices)),
        }
    )
    per_rater = [
        {
            "answers": int(answers[r]),
            "agreement": _share(agree_ok[r].sum(), agree_n[r].sum()),
            "compared": int(agree_n[r].sum()),
            "by_label": {choice: {"agreement": _share(agree_ok[r, c], agree_n[r, c]), "compared": int(agree_n[r, c])} for c, choice in enumerate(choices)},
            "gold_answered": int(g_n[r]),
            "gold_accuracy": _share(g_exact[r], g_n[r]),
            "gold_per_label": _share(gold_bits_ok[r], g_n[r] * len(choices)),
        }
        for r in range(n_raters)
    ]
    return figures, per_rater


def questions_figures(project, rows: list[tuple[int, int, dict]], gold: dict[int, dict], *, seed: int = 0) -> tuple[np.ndarray, list[dict]]:
    """(the rater ids, one figures dict per scale or labels question). `rows` are (item id,
    rater id, answers) of the human judgments; `gold` maps a gold item's id to its gold answers."""
    rater_ids = np.unique(np.asarray([r for _, r, _ in rows], dtype=np.int64))
    out = []
    memo: dict = {}
    for q in declared(project):
        if q["type"] not in (SCALE, LABELS):
            continue
        cells = QuestionCells(q, rows, gold)
        rater_idx = np.searchsorted(rater_ids, cells.rater).astype(np.int64)
        compute = scale_figures if q["type"] == SCALE else label_figures
        figures, per_rater = compute(cells, rater_idx, len(rater_ids), seed=seed, memo=memo)
        head = {key: q[key] for key in ("key", "label", "type", "per")}
        if q["type"] == SCALE:
            head.update({"min": q["min"], "max": q["max"], "level": "ordinal", "gold_rule": f"within +-{GOLD_TOLERANCE} point"})
        else:
            head.update({"choices": q["choices"], "level": "nominal per label; Jaccard distance on the set", "gold_rule": "exact set (per-label share beside it)"})
        out.append(
            {
                **head,
                "answers": len(cells),
                "raters": int(len(np.unique(cells.rater))),
                "items": int(len(np.unique(cells.item))),
                **figures,
                "per_rater": per_rater,
            }
        )
    return rater_ids, out
