"""How far an AI judge agrees with the project's raters, before anyone trains on its labels.

For the items that have both an AI judgment (source `ai`) and human ones, per judge and per
template (Judgment.ai_model, Judgment.ai_template): Cohen's kappa and raw agreement of the AI
against the human consensus and against each rater, with 95 % intervals; and the items where
the AI and the raters disagree most, for a side-by-side look.

What is compared (one categorical label per unit, as annotation.kinds.gold_matches reads answers)
- binary:  unit = item; label = the winner (candidate 0, candidate 1, tie, both bad).
- likert:  unit = item; label = the side (candidate 0, tie, candidate 1): strength is a matter of taste.
- ranking: unit = (item, pair of candidates); label = which of the two is ranked higher, or level.
- rating:  unit = (item, candidate); label = good/bad (score >= the project's threshold).
The human consensus of a unit is the strict plurality of its raters (a one-rater unit: that
rater); a unit split evenly has no consensus and is left out of the consensus figures.

Intervals: a percentile bootstrap over *items* (items drawn with replacement, so the pairs or
candidates of one item stay together), 1,000 resamples (200 above 5,000 items), fixed seed.
Analytic standard errors for kappa assume independent units, which a ranking's pairs are not.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from itertools import combinations

import numpy as np
from django.db.models import Q

from annotation.kinds import Kind
from annotation.models import Candidate, Item, Judgment, Project

MIN_UNITS = 5  # fewer shared units than this: no kappa (too noisy to show)
RESAMPLES, RESAMPLES_LARGE, LARGE = 1000, 200, 5000
DISAGREEMENTS = 20
IMPORTED = 0  # the pseudo-rater of imported labels (no user has id 0)


def unit_labels(project: Project, value: dict) -> dict[tuple, str]:
    """{unit suffix: label} for one answer (see the module docstring)."""
    kind = project.kind
    if kind == Kind.BINARY:
        return {(): str(value.get("winner"))}
    if kind == Kind.LIKERT:
        w = value.get("winner")
        return {(): str(w) if w in (0, 1) else "tie"}
    if kind == Kind.RANKING:
        tier = {p: t for t, members in enumerate(value.get("ranking") or []) for p in members}
        out = {}
        for i, j in combinations(sorted(tier), 2):
            out[(i, j)] = str(i) if tier[i] < tier[j] else str(j) if tier[j] < tier[i] else "level"
        return out
    if kind == Kind.RATING:
        return {(p,): "good" if s >= project.rating_threshold else "bad" for p, s in enumerate(value.get("scores") or [])}
    return {}


def kappa_from_confusion(conf: np.ndarray) -> np.ndarray:
    """Cohen's kappa of one (C, C) confusion matrix or a stack (B, C, C); nan where undefined."""
    conf = np.asarray(conf, dtype=np.float64)
    single = conf.ndim == 2
    conf = conf[None] if single else conf
    n = conf.sum(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        po = np.trace(conf, axis1=1, axis2=2) / n
        pe = (conf.sum(axis=2) * conf.sum(axis=1)).sum(axis=1) / (n * n)
        kappa = np.where(pe < 1.0 - 1e-12, (po - pe) / (1.0 - pe), np.nan)
    return kappa[0] if single else kappa


def _round(x, digits: int = 3):
    return None if x is None or not np.isfinite(x) else round(float(x), digits)


def compare(pairs: list[tuple[int, str, str]], *, seed: int = 0) -> dict:
    """Agreement of (item_id, ai_label, human_label) units: raw agreement and kappa with 95 % bootstrap intervals."""
    if not pairs:
        return {"units": 0, "items": 0, "agreement": None, "kappa": None, "agreement_ci": None, "kappa_ci": None}
    labels = sorted({a for _, a, _ in pairs} | {h for _, _, h in pairs})
    code = {label: k for k, label in enumerate(labels)}
    C = len(labels)
    items, item_of = np.unique(np.fromiter((p[0] for p in pairs), dtype=np.int64, count=len(pairs)), return_inverse=True)
    cell = np.fromiter((code[a] * C + code[h] for _, a, h in pairs), dtype=np.int64, count=len(pairs))
    # Per item: its units' confusion counts; a resample is a weighted sum of items.
    per_item = np.zeros((len(items), C * C))
    np.add.at(per_item, (item_of.reshape(-1), cell), 1.0)
    conf = per_item.sum(axis=0).reshape(C, C)
    agreement = np.trace(conf) / conf.sum()
    n_units = len(pairs)
    out = {"units": n_units, "items": len(items), "agreement": _round(agreement), "kappa": None, "agreement_ci": None, "kappa_ci": None}
    if n_units >= MIN_UNITS:
        out["kappa"] = _round(kappa_from_confusion(conf))
    if len(items) >= 2:
        rng = np.random.default_rng(seed)
        B = RESAMPLES if len(items) <= LARGE else RESAMPLES_LARGE
        counts = rng.multinomial(len(items), np.full(len(items), 1.0 / len(items)), size=B).astype(np.float64)
        boot = (counts @ per_item).reshape(B, C, C)
        with np.errstate(divide="ignore", invalid="ignore"):
            agree_b = np.trace(boot, axis1=1, axis2=2) / boot.sum(axis=(1, 2))
        out["agreement_ci"] = [_round(np.nanpercentile(agree_b, 2.5)), _round(np.nanpercentile(agree_b, 97.5))]
        if out["kappa"] is not None:
            kappa_b = kappa_from_confusion(boot)
            if np.isfinite(kappa_b).any():
                out["kappa_ci"] = [_round(np.nanpercentile(kappa_b, 2.5)), _round(np.nanpercentile(kappa_b, 97.5))]
    return out


def _plurality(labels: list[str]) -> tuple[str | None, float]:
    counts = Counter(labels).most_common()
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return None, counts[0][1] / len(labels)
    return counts[0][0], counts[0][1] / len(labels)


def ai_human_agreement(*, project: Project, seed: int = 0, disagreements: int = DISAGREEMENTS) -> dict:
    """Every AI judge of the project against its raters (see the module docstring)."""
    ai_rows = list(
        Judgment.objects.filter(project=project, source=Judgment.Source.AI, kind=project.kind)
        .order_by("item_id", "id")
        .values_list("item_id", "ai_model", "ai_template", "value", "rationale")
    )
    result = {"project": project.slug, "kind": project.kind, "judges": [], "disagreements": [], "intervals": "95% percentile bootstrap over items"}
    if not ai_rows:
        return result
    ai_items = {r[0] for r in ai_rows}
    # Labels imported with the items (source `import`, no rater: e.g. a TRL preference file) count
    # as human, as in snapshots; they appear as one pseudo-rater, "(imported labels)".
    human = (
        Judgment.objects.filter(project=project, kind=project.kind, item_id__in=ai_items)
        .filter(Q(source=Judgment.Source.HUMAN, rater__isnull=False) | Q(source=Judgment.Source.IMPORT))
        .order_by("item_id", "id")
        .values_list("item_id", "rater_id", "value", "rater__username")
    )
    # (item, unit) -> {rater: label}
    human_units: dict[tuple, dict[int, str]] = defaultdict(dict)
    human_values: dict[int, list[tuple[str, dict]]] = defaultdict(list)
    names: dict[int, str] = {IMPORTED: "(imported labels)"}
    for item_id, rater_id, value, username in human:
        rater_id = IMPORTED if rater_id is None else rater_id
        username = username or names[IMPORTED]
        names[rater_id] = username
        human_values[item_id].append((username, value))
        for unit, label in unit_labels(project, value).items():
            human_units[(item_id, *unit)][rater_id] = label
    consensus = {key: _plurality(list(by_rater.values())) for key, by_rater in human_units.items()}

    groups: dict[tuple[str, str], list[tuple]] = defaultdict(list)
    for row in ai_rows:
        groups[(row[1], row[2])].append(row)
    # The side-by-side list is for the judge with the most answers (the API takes no choice: keep it simple).
    main = max(groups, key=lambda g: (len(groups[g]), g))
    for (model, template), rows in sorted(groups.items()):
        vs_consensus, vs_rater = [], defaultdict(list)
        item_scores = []
        for item_id, _, _, value, rationale in rows:
            units = unit_labels(project, value)
            disagree = compared = 0
            for unit, ai_label in units.items():
                key = (item_id, *unit)
                label, share = consensus.get(key, (None, 0.0))
                if label is not None:
                    vs_consensus.append((item_id, ai_label, label))
                    compared += 1
                    if label != ai_label:
                        disagree += share  # a clear human majority against the AI weighs more
                for rater_id, h_label in human_units.get(key, {}).items():
                    vs_rater[rater_id].append((item_id, ai_label, h_label))
            if compared:
                item_scores.append((disagree / compared, len(human_values.get(item_id, [])), item_id, value, rationale))
        raters = []
        for rater_id, pairs in vs_rater.items():
            raters.append({"rater_id": rater_id, "username": names.get(rater_id, f"#{rater_id}"), **compare(pairs, seed=seed)})
        raters.sort(key=lambda r: (-r["units"], r["username"]))
        result["judges"].append(
            {
                "ai_model": model,
                "ai_template": template,
                "ai_judgments": len(rows),
                "items_with_both": len({i for i, _, _ in vs_consensus} | {i for p in vs_rater.values() for i, _, _ in p}),
                "vs_consensus": compare(vs_consensus, seed=seed),
                "vs_raters": raters,
            }
        )
        if (model, template) == main:
            worst = sorted((s for s in item_scores if s[0] > 0), key=lambda s: (-s[0], -s[1], s[2]))[:disagreements]
            result["disagreements"] = _disagreement_rows(project, worst, human_values, model, template)
    return result


def _disagreement_rows(project: Project, worst: list[tuple], human_values: dict, model: str, template: str) -> list[dict]:
    ids = [w[2] for w in worst]
    items = Item.objects.in_bulk(ids)
    cands: dict[int, list[dict]] = defaultdict(list)
    for item_id, position, text, model_name in Candidate.objects.filter(item_id__in=ids).order_by("item_id", "position").values_list("item_id", "position", "text", "model_name"):
        cands[item_id].append({"position": position, "text": text, "model": model_name})
    rows = []
    for score, _, item_id, value, rationale in worst:
        item = items.get(item_id)
        if item is None:
            continue
        rows.append(
            {
                "item_id": item_id,
                "external_id": item.external_id,
                "prompt": item.prompt,
                "candidates": cands.get(item_id, []),
                "ai_model": model,
                "ai_template": template,
                "ai_value": value,
                "ai_rationale": rationale,
                "human_values": [{"rater": name, "value": v} for name, v in human_values.get(item_id, [])],
                "disagreement": round(score, 3),
            }
        )
    return rows


def project_ai_agreement(*, project: Project) -> dict:
    """ai_human_agreement, cached until the project's judgments change (annotation.quality.figures)."""
    from annotation.quality.figures import quality_cached

    return quality_cached(project=project, name="ai-agreement", compute=lambda: ai_human_agreement(project=project))
