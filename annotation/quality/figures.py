"""Quality selectors: agreement, consensus, position bias and speed per project and per rater.

One query (values_list over the project's human judgments of its kind), then numpy
(annotation.quality.agreement). A 100,000-judgment project takes well under the 5 s target; see
bench/agreement_bench.py. Results are cached per project until a judgment or a membership
changes (the key holds the newest judgment id, the judgment count and the paused raters).
"""
from __future__ import annotations

import hashlib
from datetime import datetime
from datetime import timezone as dt_timezone

import numpy as np
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import Count, FloatField, Func, Max, TextField
from django.db.models.functions import Cast
from django.db.models.fields.json import KeyTextTransform

from annotation.quality import agreement
from annotation.kinds import Kind
from annotation.models import Judgment, Membership, Project

CACHE_SECONDS = 300


class EpochSeconds(Func):
    """A timestamp as seconds since 1970, computed by the database: parsing 100,000 datetimes
    in Python costs more than all the statistics together."""

    output_field = FloatField()
    # A double, not PostgreSQL's numeric: decoding 100,000 Decimals is slow too.
    template = "CAST(EXTRACT(EPOCH FROM %(expressions)s) AS double precision)"

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="((julianday(%(expressions)s) - 2440587.5) * 86400.0)", **extra)


def _round(x, digits: int = 3):
    if x is None:
        return None
    x = float(x)
    return None if np.isnan(x) else round(x, digits)


def _ints(values, missing: int = -1) -> np.ndarray:
    return np.fromiter((missing if v is None else int(v) for v in values), dtype=np.int64, count=len(values))


def human_judgments(project: Project):
    """The judgments quality is about: human ones, of the project's kind, by a known rater."""
    return Judgment.objects.filter(project=project, source=Judgment.Source.HUMAN, kind=project.kind, rater__isnull=False).order_by()


class QualityData:
    """The project's human judgments as arrays, and their cells (annotation.quality.agreement.Cells).

    Binary and Likert read only what they need, as text straight from the database (winner,
    strength, the first on-screen candidate), so no JSON is decoded in Python; rankings and
    ratings read the whole value as text and decode all rows in one json.loads call."""

    def __init__(self, project: Project):
        self.project = project
        pairwise = project.kind in (Kind.BINARY, Kind.LIKERT)
        qs = human_judgments(project).annotate(t=EpochSeconds("created_at"), f=KeyTextTransform("0", "display_order"))
        if pairwise:
            qs = qs.annotate(w=KeyTextTransform("winner", "value"), s=KeyTextTransform("strength", "value"))
            with agreement.gc_paused():
                rows = list(qs.values_list("item_id", "rater_id", "duration_ms", "t", "gold_correct", "f", "w", "s"))
        else:
            # The value as JSON text, parsed below in one json.loads call for all rows.
            with agreement.gc_paused():
                rows = list(qs.annotate(v=Cast("value", TextField())).values_list("item_id", "rater_id", "duration_ms", "t", "gold_correct", "f", "v"))
        self.n = len(rows)
        columns = list(zip(*rows)) if rows else [()] * (8 if pairwise else 7)
        firsts = _ints(columns[5])
        items, raters, durations, times, gold = columns[:5]
        self.rater_ids, rater = np.unique(np.asarray(raters, dtype=np.int64), return_inverse=True)
        self.rater = rater.astype(np.int64).reshape(-1)
        self.item = np.asarray(items, dtype=np.int64)
        self.seconds = np.fromiter((np.nan if d is None else d / 1000.0 for d in durations), dtype=np.float64, count=self.n)
        self.time = np.asarray(times, dtype=np.float64)
        self.gold_answered = np.fromiter((g is not None for g in gold), dtype=bool, count=self.n)
        self.gold_correct = np.fromiter((g is True for g in gold), dtype=bool, count=self.n)
        if pairwise:
            winners = agreement.winner_codes(columns[6])
            strengths = _ints(columns[7], missing=0)
            self.cells = agreement.cells_from_winners(project.kind, self.item, self.rater, winners, strengths, likert_points=project.likert_points)
            self.counted, self.first = agreement.first_card_picks_pairwise(winners, firsts)
            self.first_expected = 0.5
        else:
            values = agreement.decode_json_rows(columns[6])
            with agreement.gc_paused():
                matrix = agreement.position_matrix(project.kind, values)
            self.cells = agreement.cells_from_matrix(
                project.kind,
                self.item,
                self.rater,
                matrix,
                rating_min=project.rating_min,
                rating_max=project.rating_max,
                rating_threshold=project.rating_threshold,
                ranking_k=project.ranking_k,
            )
            self.counted, self.first = agreement.first_card_picks(project.kind, values, firsts, matrix=matrix)
            # Chance of the first card being picked is 1/K of each judgment's own item: a
            # ranking project mixes items of 2..K_max responses.
            per_judgment = (matrix != agreement.MISSING).sum(axis=1) if len(matrix) else np.zeros(0)
            shown = per_judgment[per_judgment > 0]
            self.first_expected = float(np.mean(1.0 / shown)) if len(shown) else 1.0 / max(1, matrix.shape[1] if matrix.ndim == 2 else 1)

    @property
    def n_raters(self) -> int:
        return len(self.rater_ids)


def _project_figures(data: QualityData, pairs: agreement.PairKappas, has: np.ndarray, agrees: np.ndarray, counted: np.ndarray, first: np.ndarray, seconds: np.ndarray) -> dict:
    cells = data.cells
    counts = agreement.value_counts(cells)
    kappas = pairs.kappa[~np.isnan(pairs.kappa)]
    known = ~np.isnan(seconds)
    return {
        "kind": data.project.kind,
        "judgments": data.n,
        "raters": data.n_raters,
        "items": int(len(np.unique(data.item))) if data.n else 0,
        "units": cells.n_units,
        "pairable_units": int(counts.shape[0]),
        "level": cells.level,
        "alpha": _round(agreement.krippendorff_alpha(counts, cells.level)),
        "fleiss_kappa": _round(agreement.fleiss_kappa(counts)),
        "mean_cohen_kappa": _round(kappas.mean()) if len(kappas) else None,
        "rater_pairs": int(len(kappas)),
        "consensus_agreement": _round(agrees.sum() / has.sum()) if has.any() else None,
        "first_card_share": _round(first.sum() / counted.sum()) if counted.any() else None,
        "first_card_expected": _round(data.first_expected),
        "first_card_judgments": int(counted.sum()),
        **_speed(float(np.nanmedian(seconds)) if known.any() else np.nan, int(known.sum()), float(seconds[known].sum())),
        "gold_answered": int(data.gold_answered.sum()),
        "gold_accuracy": _round(data.gold_correct.sum() / data.gold_answered.sum()) if data.gold_answered.any() else None,
    }


def _rater_table(data: QualityData, pairs: agreement.PairKappas, has, agrees, counted, first, seconds) -> list[dict]:
    R = data.n_raters
    if R == 0:
        return []
    cells = data.cells
    n = np.bincount(data.rater, minlength=R)
    gold_n = np.bincount(data.rater, weights=data.gold_answered, minlength=R)
    gold_ok = np.bincount(data.rater, weights=data.gold_correct, minlength=R)
    cons_n = np.bincount(cells.rater, weights=has, minlength=R)
    cons_ok = np.bincount(cells.rater, weights=agrees, minlength=R)
    left_n = np.bincount(data.rater, weights=counted, minlength=R)
    left_ok = np.bincount(data.rater, weights=first, minlength=R)
    known = ~np.isnan(seconds)
    timed_n = np.bincount(data.rater[known], minlength=R)
    timed_sum = np.bincount(data.rater[known], weights=seconds[known], minlength=R)
    median_s = agreement.per_group_median(data.rater, seconds, R)
    ok = ~np.isnan(pairs.kappa)
    kappa_sum = np.bincount(pairs.rater_a[ok], weights=pairs.kappa[ok], minlength=R) + np.bincount(pairs.rater_b[ok], weights=pairs.kappa[ok], minlength=R)
    kappa_n = np.bincount(pairs.rater_a[ok], minlength=R) + np.bincount(pairs.rater_b[ok], minlength=R)

    users = get_user_model().objects.in_bulk([int(r) for r in data.rater_ids])
    memberships = {m.user_id: m for m in Membership.objects.filter(project=data.project, user_id__in=[int(r) for r in data.rater_ids])}
    table = []
    for r, user_id in enumerate(data.rater_ids):
        user_id = int(user_id)
        membership = memberships.get(user_id)
        user = users.get(user_id)
        table.append(
            {
                "rater_id": user_id,
                "username": user.get_username() if user else f"#{user_id}",
                "role": membership.role if membership else None,
                "judgments": int(n[r]),
                "gold_answered": int(gold_n[r]),
                "gold_accuracy": _round(gold_ok[r] / gold_n[r]) if gold_n[r] else None,
                "consensus_agreement": _round(cons_ok[r] / cons_n[r]) if cons_n[r] else None,
                "consensus_units": int(cons_n[r]),
                "mean_cohen_kappa": _round(kappa_sum[r] / kappa_n[r]) if kappa_n[r] else None,
                "first_card_share": _round(left_ok[r] / left_n[r]) if left_n[r] else None,
                "first_card_judgments": int(left_n[r]),
                **_speed(median_s[r], int(timed_n[r]), float(timed_sum[r])),
                "paused": bool(membership.paused) if membership else False,
                "paused_reason": membership.paused_reason if membership else "",
            }
        )
    table.sort(key=lambda row: (-row["judgments"], row["username"]))
    return table


def time_per_judgment(data: QualityData) -> np.ndarray:
    """Seconds each judgment took, the one source of every speed figure (median time, judgments
    per active hour), so they cannot contradict each other: the time the item was on the rater's
    screen (duration_ms), capped at a break (IDLE_GAP_SECONDS); where a client sent none, the gap
    since the same rater's previous judgment if it was not a break; else the median of the rest.
    Timestamps alone would not do: judgments imported or saved in one batch are milliseconds
    apart, which made 1 s per judgment sit beside 200,000 judgments per hour."""
    seconds = np.minimum(data.seconds, agreement.IDLE_GAP_SECONDS)
    missing = np.isnan(seconds)
    if missing.any():
        order = np.lexsort((data.time, data.rater))
        gaps = np.diff(data.time[order])
        same_rater = data.rater[order][1:] == data.rater[order][:-1]
        since_previous = np.full(data.n, np.nan)
        since_previous[order[1:]] = np.where(same_rater & (gaps <= agreement.IDLE_GAP_SECONDS), gaps, np.nan)
        seconds[missing] = since_previous[missing]
        still = np.isnan(seconds)
        if still.any() and not still.all():
            seconds[still] = np.median(seconds[~still])
    return seconds


def _speed(median: float, count: int, total: float) -> dict:
    """Median and mean time per judgment and judgments per active hour (= 3600 / mean)."""
    return {
        "median_seconds": _round(median, 1) if count else None,
        "mean_seconds": _round(total / count, 1) if count else None,
        "judgments_per_hour": _round(count / (total / 3600.0), 1) if total > 0 else None,
    }


def agreement_over_time(data: QualityData, *, max_points: int = 60) -> list[dict]:
    """Alpha per day (or per week when the project spans more than 60 days). Each unit belongs
    to the period of its last judgment and brings all its judgments, so a pair of judgments made
    on different days still counts: the curve reads 'agreement on units completed that day'."""
    cells = data.cells
    if not len(cells.unit):
        return []
    cell_time = data.time[cells.row]
    last = np.full(cells.n_units, -np.inf)
    np.maximum.at(last, cells.unit, cell_time)
    span_days = (last.max() - last.min()) / 86400.0
    width = 86400.0 if span_days <= max_points else 7 * 86400.0
    start = np.floor(last.min() / 86400.0) * 86400.0
    period = ((last - start) // width).astype(np.int64)
    n_periods = int(period.max()) + 1
    points = []
    for p in range(max(0, n_periods - max_points), n_periods):
        mask = period[cells.unit] == p
        counts = agreement.value_counts(cells, mask)
        if counts.shape[0] < 2:
            continue
        day = datetime.fromtimestamp(start + p * width, tz=dt_timezone.utc).date()
        points.append({"period": day.isoformat(), "days": int(width // 86400), "units": int(counts.shape[0]), "alpha": _round(agreement.krippendorff_alpha(counts, cells.level))})
    return points


def project_quality_compute(*, project: Project) -> dict:
    """Every quality figure of a project, uncached. Prefer project_quality (cached)."""
    data = QualityData(project)
    pairs = agreement.pairwise_cohen_kappa(data.cells)
    has, agrees = agreement.consensus_agreement(data.cells)
    counted, first = data.counted, data.first
    seconds = time_per_judgment(data)
    return {
        "project": project.slug,
        "computed_at": datetime.now(tz=dt_timezone.utc).isoformat(),
        "summary": _project_figures(data, pairs, has, agrees, counted, first, seconds),
        "raters": _rater_table(data, pairs, has, agrees, counted, first, seconds),
        "over_time": agreement_over_time(data),
    }


def _cache_key(project: Project) -> str:
    # changed: a rater's change of an answer (My work) rewrites a row without adding one.
    stats = Judgment.objects.filter(project=project).aggregate(last=Max("id"), n=Count("id"), changed=Max("changed_at"))
    paused = list(Membership.objects.filter(project=project, paused=True).order_by("user_id").values_list("user_id", flat=True))
    # questions: a changed declaration (a scale's range, a label's choices) changes the question figures.
    scale = (project.kind, project.likert_points, project.rating_min, project.rating_max, project.rating_threshold, project.ranking_k, project.ranking_min_k, project.questions)
    # created_at tells apart two projects that reused an id (SQLite after a rollback).
    digest = hashlib.sha1(repr((project.created_at, stats["last"], stats["n"], stats["changed"], scale, paused)).encode()).hexdigest()
    return f"arbiter:quality:{project.id}:{digest}"


def quality_cached(*, project: Project, name: str, compute):
    """compute() cached under `name` until the project's judgments or paused raters change."""
    key = f"{_cache_key(project)}:{name}"
    result = cache.get(key)
    if result is None:
        result = compute()
        cache.set(key, result, CACHE_SECONDS)
    return result


def project_quality(*, project: Project) -> dict:
    """Quality figures of a project, cached until its judgments or paused raters change."""
    return quality_cached(project=project, name="figures", compute=lambda: project_quality_compute(project=project))


def readable_disagreements(*, kind: str, rows: list[dict]) -> list[dict]:
    """The "where they disagree most" rows with every answer in words ("A better", "Tie",
    "B > A = C"), never the stored value dict: a manager reads `{'winner': 'tie'}` as a bug.
    Responses are named by candidate position (A = the first imported), as on the
    adjudication page, since the AI saw no on-screen order of its own. Copies; the cached
    rows stay as computed."""
    from annotation.labelling import screen_label
    from annotation.my_work import describe_answer

    def words(value, order):
        return describe_answer(kind, value, order) if isinstance(value, dict) else str(value)

    readable = []
    for row in rows:
        order = [c["position"] for c in row.get("candidates", [])]
        readable.append(
            {
                **row,
                "candidates": [{**c, "label": screen_label(i)} for i, c in enumerate(row.get("candidates", []))],
                "ai_answer": words(row.get("ai_value"), order),
                "human_values": [{**h, "answer": words(h.get("value"), order)} for h in row.get("human_values", [])],
            }
        )
    return readable
