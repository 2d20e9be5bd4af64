"""Small statistics shared by run pages, evaluations, human verdicts and the benches: the Wilson
score interval of a proportion, the win rate of paired scores, Spearman's rho with its interval and
the t interval of a mean. No Django and no torch, so the web process, the workers and bench
scripts without a database all use the same numbers."""
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


# --- regression figures (the multi-objective reward model's heads, training/recipes/multi_reward.py) ---

def ranks(values: list[float]) -> list[float]:
    """1-based ranks, ties given their average rank (what Spearman's rho needs)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def pearson(x: list[float], y: list[float]) -> float | None:
    n = len(x)
    if n < 2:
        return None
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx, syy = sum((a - mx) ** 2 for a in x), sum((b - my) ** 2 for b in y)
    if sxx <= 0 or syy <= 0:
        return None  # a constant: no correlation to speak of
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def spearman(x: list[float], y: list[float]) -> float | None:
    """Spearman's rho: Pearson's r of the ranks (ties averaged); None when either side is constant."""
    return pearson(ranks(x), ranks(y))


def spearman_interval(rho: float | None, n: int, *, confidence: float = 0.95) -> tuple[float, float] | None:
    """Fisher z interval of Spearman's rho with Fieller, Hartley and Pearson's (1957) variance
    1.06 / (n - 3) (Pearson's 1 / (n - 3) is too narrow for ranks); None below 4 pairs."""
    if rho is None or n < 4:
        return None
    z = math.atanh(max(-0.999999, min(0.999999, rho)))
    half = NormalDist().inv_cdf(0.5 + confidence / 2) * math.sqrt(1.06 / (n - 3))
    return (math.tanh(z - half), math.tanh(z + half))


def t_quantile(p: float, df: int) -> float:
    """Student's t quantile from the normal one by the Cornish-Fisher expansion (Hill 1970, to 1/df^4):
    off by 0.004 at 3 degrees of freedom, 3e-4 at 5, 1e-8 at 40 (checked against scipy), without scipy."""
    z = NormalDist().inv_cdf(p)
    v = float(df)
    return (z + (z**3 + z) / (4 * v) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3)
            + (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / (92160 * v**4))


def mean_interval(values: list[float], *, confidence: float = 0.95) -> tuple[float, float] | None:
    """The t interval of a mean (e.g. a mean absolute error over test rows); None below 2 values."""
    n = len(values)
    if n < 2:
        return None
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
    return (mean - half, mean + half)
