"""A model leaderboard from human comparisons: Bradley–Terry with bootstrap intervals.

As Chatbot Arena does: every judgment becomes chosen > rejected pairs (annotation.kinds.
comparisons, so rankings and ratings count too); a pair of candidates written by two different
named models (Candidate.model_name) is one game. A tie (binary or Likert "tie") is half a win for
each side: decisive games are counted twice and a tie once each way, which is the Arena's trick
for fitting ties with a plain Bradley–Terry model. "Both bad" is no game.

The strengths are fitted by iterative Luce spectral ranking on the models x models win matrix
(choix.ilsr_pairwise_dense's algorithm, written out here in numpy: importing choix pulls in
scipy.stats, which made the first quality page after a start take 3-5 s), with a small
regularisation so a model that never won still gets a finite score. Scores are shown on an
Elo-like scale: 1000 + 400 * log10(e) * theta, so 400 points mean 10:1 odds, and the mean model
sits at 1000. Confidence intervals come from resampling the games with replacement (200 seeded
rounds): the resample of N games is a multinomial draw over the cells of the win matrix, which is
the same distribution as drawing N games one by one, at a fraction of the cost.
"""
from __future__ import annotations

import math
from itertools import combinations

import numpy as np
from django.db.models import TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from annotation import kinds
from annotation.quality.agreement import MISSING, decode_json_rows, gc_paused, position_matrix, winner_codes
from annotation.models import Candidate, Judgment, Project

ELO_SCALE = 400.0 / math.log(10.0)
ELO_BASE = 1000.0
REGULARISATION = 0.01
BOOTSTRAP_ROUNDS = 200
SEED = 42


def _stationary(generator: np.ndarray) -> np.ndarray:
    """The stationary distribution of a continuous-time Markov chain (x @ generator = 0), scaled
    to sum to n. The regularisation makes the chain irreducible, so it is unique: one balance
    equation is redundant and is replaced by the scale."""
    n = generator.shape[0]
    system = generator.T.copy()
    system[-1, :] = 1.0
    rhs = np.zeros(n)
    rhs[-1] = n
    return np.linalg.solve(system, rhs)


def ilsr_dense(wins: np.ndarray, *, alpha: float, max_iter: int = 200, tol: float = 1e-8) -> np.ndarray:
    """Iterative LSR (Maystre & Grossglauser 2015), as choix.ilsr_pairwise_dense computes it:
    centred log-strengths from wins[i, j] (times i beat j)."""
    n = wins.shape[0]
    weights = np.ones(n)
    previous = None
    for _ in range(max_iter):
        chain = alpha * np.ones((n, n))
        denom = np.tile(weights, (n, 1))
        chain += wins.T / (denom + denom.T)
        chain -= np.diag(chain.sum(axis=1))
        params = np.log(_stationary(chain))
        params -= params.mean()
        if previous is not None and np.linalg.norm(previous - params, ord=1) <= tol * n:
            return params
        previous = params
        weights = np.exp(params)
        weights *= n / weights.sum()
    raise RuntimeError(f"Did not converge after {max_iter} iterations")


def _fit(wins: np.ndarray) -> np.ndarray:
    theta = ilsr_dense(wins, alpha=REGULARISATION, max_iter=200)
    return theta - theta.mean()


def bradley_terry(wins: np.ndarray, *, rounds: int = BOOTSTRAP_ROUNDS, seed: int = SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(score, lower, upper) on the Elo-like scale from a win matrix (wins[i, j]: times i beat j,
    ties already counted as described above). The interval is the central 95 % of the bootstrap."""
    n = wins.shape[0]
    score = ELO_BASE + ELO_SCALE * _fit(wins)
    total = int(round(wins.sum()))
    if total == 0 or rounds <= 0:
        return score, score.copy(), score.copy()
    rng = np.random.default_rng(seed)
    flat = wins.ravel() / wins.sum()
    samples = np.empty((rounds, n))
    for b in range(rounds):
        resampled = rng.multinomial(total, flat).reshape(n, n).astype(np.float64)
        samples[b] = ELO_BASE + ELO_SCALE * _fit(resampled)
    lower, upper = np.percentile(samples, [2.5, 97.5], axis=0)
    # The point estimate is fitted on all games; keep it inside its own interval even when a
    # lopsided resample distribution puts it at the edge.
    return score, np.minimum(lower, score), np.maximum(upper, score)


def win_matrix(n_models: int, winner: np.ndarray, loser: np.ndarray, tie: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Games as parallel arrays of model indices (for a tie, winner/loser are just the two
    sides) -> (wins for the fit, decisive wins [i beat j], ties [i tied j, symmetric])."""
    decisive = np.zeros((n_models, n_models))
    ties = np.zeros((n_models, n_models))
    np.add.at(decisive, (winner[~tie], loser[~tie]), 1)
    np.add.at(ties, (winner[tie], loser[tie]), 1)
    ties = ties + ties.T
    return 2 * decisive + ties, decisive, ties


def _position_lookup(project: Project) -> tuple[list[str], dict[int, tuple[np.ndarray, np.ndarray]]]:
    """Model names, and per candidate position the sorted item ids with their model index."""
    rows = list(Candidate.objects.filter(item__project=project).exclude(model_name="").order_by("position", "item_id").values_list("position", "item_id", "model_name"))
    models = sorted({name for _, _, name in rows})
    index = {m: i for i, m in enumerate(models)}
    by_position: dict[int, tuple[list, list]] = {}
    for position, item_id, name in rows:
        items, names = by_position.setdefault(position, ([], []))
        items.append(item_id)
        names.append(index[name])
    return models, {p: (np.asarray(i, dtype=np.int64), np.asarray(n, dtype=np.int64)) for p, (i, n) in by_position.items()}


def _model_of(lookup: dict, position: int, item_ids: np.ndarray) -> np.ndarray:
    """Model index of each item's candidate at `position`, -1 where unnamed."""
    if position not in lookup or not len(item_ids):
        return np.full(len(item_ids), -1, dtype=np.int64)
    items, names = lookup[position]
    at = np.minimum(np.searchsorted(items, item_ids), len(items) - 1)
    return np.where(items[at] == item_ids, names[at], -1)


def project_games(*, project: Project) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(models, winner, loser, tie): every game between two differently named models in the
    project's human judgments. Binary and Likert are read as text and matched in numpy."""
    models, lookup = _position_lookup(project)
    empty = np.zeros(0, dtype=np.int64)
    if len(models) < 2:
        return models, empty, empty, np.zeros(0, dtype=bool)
    judgments = Judgment.objects.filter(project=project, source=Judgment.Source.HUMAN, kind=project.kind).order_by()
    if project.kind in (kinds.Kind.BINARY, kinds.Kind.LIKERT):
        with gc_paused():
            rows = list(judgments.annotate(w=KeyTextTransform("winner", "value")).values_list("item_id", "w"))
        item_ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        codes = winner_codes([r[1] for r in rows])
        a, b = _model_of(lookup, 0, item_ids), _model_of(lookup, 1, item_ids)
        keep = (a >= 0) & (b >= 0) & (a != b) & (codes >= 0) & (codes <= 2)
        a, b, codes = a[keep], b[keep], codes[keep]
        return models, np.where(codes == 1, b, a), np.where(codes == 1, a, b), codes == 2
    # Rankings and ratings: every two candidates one answer places differently are a game, the
    # better placed one winning (as annotation.kinds.comparisons pairs them), in numpy.
    with gc_paused():
        rows = list(judgments.annotate(v=Cast("value", TextField())).values_list("item_id", "v"))
        item_ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        matrix = position_matrix(project.kind, decode_json_rows(r[1] for r in rows))
    winners, losers = [], []
    for a, b in combinations(range(matrix.shape[1] if matrix.ndim == 2 else 0), 2):
        model_a, model_b = _model_of(lookup, a, item_ids), _model_of(lookup, b, item_ids)
        place_a, place_b = matrix[:, a], matrix[:, b]
        a_better = place_a < place_b if project.kind == kinds.Kind.RANKING else place_a > place_b
        game = (place_a != MISSING) & (place_b != MISSING) & (place_a != place_b) & (model_a >= 0) & (model_b >= 0) & (model_a != model_b)
        winners.append(np.where(a_better, model_a, model_b)[game])
        losers.append(np.where(a_better, model_b, model_a)[game])
    if not winners:
        return models, empty, empty, np.zeros(0, dtype=bool)
    winner, loser = np.concatenate(winners), np.concatenate(losers)
    return models, winner, loser, np.zeros(len(winner), dtype=bool)


def leaderboard_rows(models: list[str], winner: np.ndarray, loser: np.ndarray, tie: np.ndarray, *, rounds: int = BOOTSTRAP_ROUNDS, seed: int = SEED) -> list[dict]:
    """Rows best first: model, score with a 95 % interval, games, wins, ties, win rate."""
    if not len(winner):
        return []
    played_models = np.unique(np.concatenate([winner, loser]))
    remap = np.full(len(models), -1, dtype=np.int64)
    remap[played_models] = np.arange(len(played_models))
    names = [models[i] for i in played_models]
    fit, decisive, ties = win_matrix(len(names), remap[winner], remap[loser], np.asarray(tie, dtype=bool))
    score, lower, upper = bradley_terry(fit, rounds=rounds, seed=seed)
    rows = []
    for i, model in enumerate(names):
        wins, losses, tied = decisive[i].sum(), decisive[:, i].sum(), ties[i].sum()
        played = wins + losses + tied
        rows.append(
            {
                "model": model,
                "score": round(float(score[i]), 1),
                "lower": round(float(lower[i]), 1),
                "upper": round(float(upper[i]), 1),
                "games": int(played),
                "wins": int(wins),
                "losses": int(losses),
                "ties": int(tied),
                "win_rate": round(float((wins + tied / 2) / played), 3) if played else None,
            }
        )
    rows.sort(key=lambda r: -r["score"])
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return rows


def leaderboard_from_games(games: list[tuple[str, str, bool]], *, rounds: int = BOOTSTRAP_ROUNDS, seed: int = SEED) -> list[dict]:
    """The same from a list of (winner, loser, tie) model names."""
    models = sorted({m for a, b, _ in games for m in (a, b)})
    index = {m: i for i, m in enumerate(models)}
    winner = np.asarray([index[a] for a, _, _ in games], dtype=np.int64)
    loser = np.asarray([index[b] for _, b, _ in games], dtype=np.int64)
    tie = np.asarray([t for _, _, t in games], dtype=bool)
    return leaderboard_rows(models, winner, loser, tie, rounds=rounds, seed=seed)


def project_leaderboard(*, project: Project, rounds: int = BOOTSTRAP_ROUNDS, seed: int = SEED) -> list[dict]:
    """The leaderboard of a project; empty when fewer than two named models were compared."""
    models, winner, loser, tie = project_games(project=project)
    return leaderboard_rows(models, winner, loser, tie, rounds=rounds, seed=seed)
