"""A model leaderboard from human comparisons: Bradley–Terry with bootstrap intervals.

As Chatbot Arena does: every judgment becomes chosen > rejected pairs (annotation.kinds.
comparisons, so rankings and ratings count too); a pair of candidates written by two different
named models (Candidate.model_name) is one game. A tie (binary or Likert "tie") is half a win for
each side: decisive games are counted twice and a tie once each way, which is the Arena's trick
for fitting ties with a plain Bradley–Terry model. "Both bad" is no game.

The strengths are fitted with choix.ilsr_pairwise_dense on the models x models win matrix, with a
small regularisation so a model that never won still gets a finite score. Scores are shown on an
Elo-like scale: 1000 + 400 * log10(e) * theta, so 400 points mean 10:1 odds, and the mean model
sits at 1000. Confidence intervals come from resampling the games with replacement (200 seeded
rounds): the resample of N games is a multinomial draw over the cells of the win matrix, which is
the same distribution as drawing N games one by one, at a fraction of the cost.
"""
from __future__ import annotations

import math

import numpy as np

from annotation import kinds
from annotation.models import Candidate, Judgment, Project

ELO_SCALE = 400.0 / math.log(10.0)
ELO_BASE = 1000.0
REGULARISATION = 0.01
BOOTSTRAP_ROUNDS = 200
SEED = 42


def _fit(wins: np.ndarray) -> np.ndarray:
    import choix

    theta = choix.ilsr_pairwise_dense(wins, alpha=REGULARISATION, max_iter=200)
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


def win_matrix(games: list[tuple[str, str, bool]]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """games: (model_a, model_b, tie) with a the winner unless tie. Returns (models, wins for the
    fit, raw counts [decisive wins a->b, ties on the diagonal-free symmetric part])."""
    models = sorted({m for a, b, _ in games for m in (a, b)})
    index = {m: i for i, m in enumerate(models)}
    n = len(models)
    fit = np.zeros((n, n))
    decisive = np.zeros((n, n))
    ties = np.zeros((n, n))
    for a, b, tie in games:
        i, j = index[a], index[b]
        if tie:
            fit[i, j] += 1
            fit[j, i] += 1
            ties[i, j] += 1
            ties[j, i] += 1
        else:
            fit[i, j] += 2
            decisive[i, j] += 1
    return models, fit, np.stack([decisive, ties])


def project_games(*, project: Project) -> list[tuple[str, str, bool]]:
    """Every game between two differently named models in the project's human judgments."""
    names = {
        (item_id, position): name
        for item_id, position, name in Candidate.objects.filter(item__project=project).exclude(model_name="").values_list("item_id", "position", "model_name")
    }
    if len(set(names.values())) < 2:
        return []
    games: list[tuple[str, str, bool]] = []
    rows = Judgment.objects.filter(project=project, source=Judgment.Source.HUMAN, kind=project.kind).order_by().values_list("item_id", "value")
    for item_id, value in rows.iterator(chunk_size=5000):
        if project.kind in (kinds.Kind.BINARY, kinds.Kind.LIKERT) and value.get("winner") == kinds.TIE:
            a, b = names.get((item_id, 0)), names.get((item_id, 1))
            if a and b and a != b:
                games.append((a, b, True))
            continue
        for comparison in kinds.comparisons(project.kind, value):
            a, b = names.get((item_id, comparison.chosen)), names.get((item_id, comparison.rejected))
            if a and b and a != b:
                games.append((a, b, False))
    return games


def leaderboard_from_games(games: list[tuple[str, str, bool]], *, rounds: int = BOOTSTRAP_ROUNDS, seed: int = SEED) -> list[dict]:
    """Rows best first: model, score with a 95 % interval, games, wins, ties, win rate."""
    if not games:
        return []
    models, fit, (decisive, ties) = win_matrix(games)
    score, lower, upper = bradley_terry(fit, rounds=rounds, seed=seed)
    rows = []
    for i, model in enumerate(models):
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


def project_leaderboard(*, project: Project, rounds: int = BOOTSTRAP_ROUNDS, seed: int = SEED) -> list[dict]:
    """The leaderboard of a project; empty when fewer than two named models were compared."""
    return leaderboard_from_games(project_games(project=project), rounds=rounds, seed=seed)
