"""From answer probabilities to a judgment value (annotation.kinds canonical form).

Every pair is asked twice, once in each on-screen order. With q1 = P(options | c0 shown first)
and q2 = P(options | c1 shown first), the probability that c0 is better is the mean of "A" in
q1 and "B" in q2: a judge that always says "A" gets exactly 0.5 (no preference), so its
position bias cancels instead of deciding the answer. The bias itself is measured by the
probability of preferring whatever was shown first, averaged over both orders (0.5 = none).

No torch here: the numbers come in as lists of floats (training/judge/judges.py makes them).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations

from annotation.kinds import BOTH_BAD, TIE, Kind, likert_half  # noqa: F401 - BOTH_BAD: the judge never answers it

# |P(c0 better) - 0.5| at or below this is a tie (binary, where the project allows ties).
DEFAULT_TIE_BAND = 0.02


@dataclass(frozen=True)
class PairVerdict:
    """One pair judged in both orders."""

    p: float  # P(the first candidate of the pair, by position, is better), both orders combined
    p_first: float  # P(whatever was shown first is better), mean over the two orders: 0.5 = no bias
    flipped: bool  # the order alone changed the answer (the two orders disagree on the winner)


def normalise(values: list[float]) -> list[float]:
    total = sum(values)
    return [v / total for v in values] if total > 0 else [1.0 / len(values)] * len(values)


def pair_verdict(q1: list[float], q2: list[float]) -> PairVerdict:
    """q1 = [P(A), P(B)] with candidate i shown as A; q2 = the same with j shown as A."""
    q1, q2 = normalise(q1), normalise(q2)
    p = (q1[0] + q2[1]) / 2.0
    return PairVerdict(p=p, p_first=(q1[0] + q2[0]) / 2.0, flipped=(q1[0] > 0.5) != (q2[1] > 0.5))


def pair_verdict_from_scores(r_i: float, r_j: float) -> PairVerdict:
    """A reward model scores each response alone: Bradley–Terry P(i > j); no screen order, no bias."""
    p = 1.0 / (1.0 + math.exp(-(r_i - r_j)))
    return PairVerdict(p=p, p_first=0.5, flipped=False)


def binary_value(p: float, *, allow_tie: bool, tie_band: float = DEFAULT_TIE_BAND) -> dict | None:
    """The binary answer for P(candidate 0 better) = p; None when undecided (a split with no tie allowed)."""
    if abs(p - 0.5) <= tie_band:
        return {"winner": TIE} if allow_tie else None
    return {"winner": 0 if p > 0.5 else 1}


def likert_expected(q1: list[float], q2: list[float]) -> tuple[float, float]:
    """(expected scale index oriented by position: 0 = candidate 0 much better, points-1 = candidate 1
    much better; P(first shown better)). q1/q2 are over the points 1..N as shown on screen."""
    q1, q2 = normalise(q1), normalise(q2)
    n = len(q1)
    combined = [(a + b) / 2.0 for a, b in zip(q1, reversed(q2))]
    expected = sum(k * w for k, w in enumerate(combined))
    centre = (n - 1) / 2.0
    firsts = []
    for q in (q1, q2):
        left = sum(w for k, w in enumerate(q) if k < centre)
        right = sum(w for k, w in enumerate(q) if k > centre)
        firsts.append(left / (left + right) if left + right > 0 else 0.5)
    return expected, sum(firsts) / 2.0


def likert_value(expected: float, *, points: int) -> dict | None:
    """The Likert answer nearest to an expected scale index (0..points-1); None when an even scale
    sits exactly in the middle."""
    centre = (points - 1) / 2.0
    if abs(expected - centre) < 1e-9:
        return {"winner": TIE, "strength": 0} if points % 2 else None
    index = min(points - 1, max(0, math.floor(expected + 0.5)))
    if points % 2 and index == centre:
        return {"winner": TIE, "strength": 0}
    half = likert_half(points)
    if index < centre:
        return {"winner": 0, "strength": max(1, min(half, math.ceil(centre - index)))}
    return {"winner": 1, "strength": max(1, min(half, math.ceil(index - centre)))}


def likert_expected_from_p(p: float, *, points: int) -> float:
    """A reward model's P(candidate 0 better) on the Likert axis: 1 -> index 0, 0 -> index points-1."""
    return (1.0 - p) * (points - 1)


def ranking_value(n: int, pair_p: dict[tuple[int, int], float], *, allow_ties: bool) -> dict | None:
    """Tiers from pairwise probabilities: each candidate's expected wins (a Borda count of
    probabilities) orders them. Equal scores share a tier where ties are allowed, else: undecided."""
    wins = [0.0] * n
    for (i, j), p in pair_p.items():
        wins[i] += p
        wins[j] += 1.0 - p
    return ranking_from_scores(wins, allow_ties=allow_ties)


def ranking_from_scores(scores: list[float], *, allow_ties: bool, eps: float = 1e-6) -> dict | None:
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    tiers: list[list[int]] = []
    for i in order:
        if tiers and abs(scores[tiers[-1][0]] - scores[i]) <= eps:
            if not allow_ties:
                return None
            tiers[-1].append(i)
        else:
            tiers.append([i])
    return {"ranking": [sorted(t) for t in tiers]}


def rating_expected(q: list[float], *, low: int) -> float:
    q = normalise(q)
    return sum((low + k) * w for k, w in enumerate(q))


def rating_value(expected: list[float], *, low: int, high: int) -> dict:
    return {"scores": [min(high, max(low, math.floor(e + 0.5))) for e in expected]}


def pairs_of(n: int) -> list[tuple[int, int]]:
    return list(combinations(range(n), 2))


@dataclass
class BiasTally:
    """Position bias of the judge over a job, kept on the job row so a resumed job goes on counting."""

    first_sum: float = 0.0
    pairs: int = 0
    flipped: int = 0
    answers: dict = field(default_factory=dict)

    def add(self, verdict: PairVerdict) -> None:
        self.first_sum += verdict.p_first
        self.pairs += 1
        self.flipped += int(verdict.flipped)

    def count(self, value: dict | None) -> None:
        key = "undecided" if value is None else _answer_key(value)
        self.answers[key] = self.answers.get(key, 0) + 1

    def as_dict(self) -> dict:
        return {
            "first_sum": self.first_sum,
            "pairs": self.pairs,
            "flipped": self.flipped,
            "answers": dict(self.answers),
            "first_position_share": round(self.first_sum / self.pairs, 4) if self.pairs else None,
            "order_flip_share": round(self.flipped / self.pairs, 4) if self.pairs else None,
        }

    @classmethod
    def from_dict(cls, data: dict | None) -> BiasTally:
        data = data or {}
        return cls(first_sum=float(data.get("first_sum", 0.0)), pairs=int(data.get("pairs", 0)), flipped=int(data.get("flipped", 0)), answers=dict(data.get("answers") or {}))


def _answer_key(value: dict) -> str:
    if "winner" in value:
        w = value["winner"]
        return f"{w}" if "strength" not in value or w == TIE else f"{w}:{value['strength']}"
    if "ranking" in value:
        return "ranking"
    return "rating"


KIND_NEEDS = {Kind.BINARY: "pair", Kind.LIKERT: "likert", Kind.RANKING: "pair", Kind.RATING: "rating"}
