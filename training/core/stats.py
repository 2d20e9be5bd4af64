"""Small statistics shared by run pages, evaluations, human verdicts and the benches: the Wilson
score interval of a proportion and the win rate of paired scores. No Django and no torch, so the
web process, the workers and bench scripts without a database all use the same numbers."""
from __future__ import annotations

import math
from statistics import NormalDist

# Batched scoring differs in the last float bits with padding; that is no preference.
TIE_TOLERANCE = 1e-6


def wilson(successes: float, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of `successes` in `n` trials (Wilson 1927), sensible at 0, 1 and
    small n. `successes` may be fractional (a tie counted as half a win); on whole counts it is
    what scipy's binomtest(k, n).proportion_ci(method="wilson") gives. n = 0: (0, 1), no information."""
    if n <= 0:
        return (0.0, 1.0)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(max(0.0, p * (1 - p) / n + z * z / (4 * n * n))) / denom
    # At 0 and n the bounds are exactly 0 and 1 (the formula leaves rounding noise there).
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    high = 1.0 if successes >= n else min(1.0, centre + half)
    return (low, high)


def verdict(policy_score: float, reference_score: float) -> str:
    """'policy', 'reference' or 'tie' (within TIE_TOLERANCE, relative to the scores' size)."""
    p, r = policy_score, reference_score
    if abs(p - r) <= TIE_TOLERANCE * max(1.0, abs(p), abs(r)):
        return "tie"
    return "policy" if p > r else "reference"


def win_figures(*, wins: int, ties: int, n: int) -> dict:
    """{n, wins, ties, losses, win_rate, ci_low, ci_high}: a tie counts half a win."""
    lo, hi = wilson(wins + 0.5 * ties, n)
    return {"n": n, "wins": wins, "ties": ties, "losses": n - wins - ties,
            "win_rate": (wins + 0.5 * ties) / n if n else None, "ci_low": lo, "ci_high": hi}


def win_rate(policy_scores: list[float], reference_scores: list[float]) -> dict:
    """The policy's win rate over the reference, pair by pair (win_figures)."""
    verdicts = [verdict(p, r) for p, r in zip(policy_scores, reference_scores)]
    return win_figures(wins=verdicts.count("policy"), ties=verdicts.count("tie"), n=len(verdicts))
