"""The four judgment kinds: what a rater may answer, and what each answer means.

This is the one module that knows them all (DESIGN.md). Values are stored in a canonical form
that names candidates by *position* (the order they were imported in), never by the side of the
screen they were shown on; the on-screen order is recorded separately on the judgment.

Canonical values
- binary:  {"winner": 0 | 1 | "tie" | "both_bad"}
- likert:  {"winner": 0 | 1 | "tie", "strength": k}   k in 1..points//2 (0 for a tie)
- ranking: {"ranking": [[p, ...], [p, ...], ...]}       tiers, best first; every position once
- rating:  {"scores": [s_0, s_1, ...]}                  one integer score per candidate position
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any

from django.db import models


class Kind(models.TextChoices):
    BINARY = "binary", "Binary (A or B)"
    LIKERT = "likert", "Likert strength"
    RANKING = "ranking", "Ranking of K responses"
    RATING = "rating", "Single-response rating"


TIE = "tie"
BOTH_BAD = "both_bad"


class InvalidValue(ValueError):
    """An answer that does not fit the project's kind; the message names the field."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Comparison:
    chosen: int  # candidate position
    rejected: int
    strength: int  # 1 for a plain preference; scale or rank distance otherwise


def likert_half(points: int) -> int:
    """Largest strength on a symmetric scale: 7 points -> 3 ("much better")."""
    return points // 2


def _int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue(field, f"must be an integer, got {value!r}")
    return value


def validate_value(project, value: Any, n_candidates: int) -> dict:
    """Check an answer against the project's kind and settings; return it in canonical form."""
    if not isinstance(value, dict):
        raise InvalidValue("value", "must be an object")
    kind = project.kind
    if kind == Kind.BINARY:
        winner = value.get("winner")
        if winner == TIE:
            if not project.allow_tie:
                raise InvalidValue("winner", "this project does not allow ties")
            return {"winner": TIE}
        if winner == BOTH_BAD:
            if not project.allow_both_bad:
                raise InvalidValue("winner", "this project does not allow 'both bad'")
            return {"winner": BOTH_BAD}
        # type() rather than ==: 1.0 == 1 and True == 1, and neither is a position.
        if type(winner) is not int or winner not in (0, 1):
            raise InvalidValue("winner", "must be 0, 1, 'tie' or 'both_bad'")
        return {"winner": winner}

    if kind == Kind.LIKERT:
        half = likert_half(project.likert_points)
        winner = value.get("winner")
        if winner == TIE:
            if project.likert_points % 2 == 0:
                raise InvalidValue("winner", "an even scale has no middle point")
            return {"winner": TIE, "strength": 0}
        if type(winner) is not int or winner not in (0, 1):
            raise InvalidValue("winner", "must be 0, 1 or 'tie'")
        strength = _int(value.get("strength"), "strength")
        if not 1 <= strength <= half:
            raise InvalidValue("strength", f"must be between 1 and {half}")
        return {"winner": winner, "strength": strength}

    if kind == Kind.RANKING:
        tiers = value.get("ranking")
        if not isinstance(tiers, list) or not tiers:
            raise InvalidValue("ranking", "must be a non-empty list of tiers, best first")
        clean: list[list[int]] = []
        seen: list[int] = []
        for tier in tiers:
            tier = tier if isinstance(tier, list) else [tier]
            if not tier:
                raise InvalidValue("ranking", "a tier may not be empty")
            if len(tier) > 1 and not project.ranking_allow_ties:
                raise InvalidValue("ranking", "this project does not allow ties in a ranking")
            members = [_int(p, "ranking") for p in tier]
            clean.append(sorted(members))
            seen.extend(members)
        if sorted(seen) != list(range(n_candidates)):
            raise InvalidValue("ranking", f"must name every candidate 0..{n_candidates - 1} exactly once")
        return {"ranking": clean}

    if kind == Kind.RATING:
        scores = value.get("scores")
        if not isinstance(scores, list) or len(scores) != n_candidates:
            raise InvalidValue("scores", f"must be a list of {n_candidates} score(s), one per candidate")
        for score in scores:
            _int(score, "scores")
            if not project.rating_min <= score <= project.rating_max:
                raise InvalidValue("scores", f"each score must be between {project.rating_min} and {project.rating_max}")
        return {"scores": list(scores)}

    raise InvalidValue("kind", f"unknown judgment kind {kind!r}")


def comparisons(kind: str, value: dict) -> list[Comparison]:
    """Every kind normalised to chosen > rejected pairs with a strength (DESIGN.md)."""
    if kind == Kind.BINARY:
        winner = value["winner"]
        if winner in (0, 1):
            return [Comparison(winner, 1 - winner, 1)]
        return []
    if kind == Kind.LIKERT:
        winner = value["winner"]
        if winner in (0, 1):
            return [Comparison(winner, 1 - winner, value["strength"])]
        return []
    if kind == Kind.RANKING:
        tiers = value["ranking"]
        pairs = []
        for (i, better), (j, worse) in combinations(enumerate(tiers), 2):
            for chosen in better:
                for rejected in worse:
                    pairs.append(Comparison(chosen, rejected, j - i))
        return pairs
    if kind == Kind.RATING:
        scores = value["scores"]
        pairs = []
        for a, b in combinations(range(len(scores)), 2):
            if scores[a] != scores[b]:
                hi, lo = (a, b) if scores[a] > scores[b] else (b, a)
                pairs.append(Comparison(hi, lo, abs(scores[a] - scores[b])))
        return pairs
    raise ValueError(f"unknown kind {kind!r}")


def unpaired_labels(kind: str, value: dict, *, rating_threshold: int = 4) -> list[tuple[int, bool]]:
    """(position, desirable) labels for unpaired training data (KTO)."""
    if kind in (Kind.BINARY, Kind.LIKERT):
        winner = value["winner"]
        if winner in (0, 1):
            return [(winner, True), (1 - winner, False)]
        if winner == BOTH_BAD:
            return [(0, False), (1, False)]
        return []
    if kind == Kind.RANKING:
        tiers = value["ranking"]
        if len(tiers) < 2:
            return []
        return [(p, True) for p in tiers[0]] + [(p, False) for p in tiers[-1]]
    if kind == Kind.RATING:
        return [(p, s >= rating_threshold) for p, s in enumerate(value["scores"])]
    raise ValueError(f"unknown kind {kind!r}")


def best_positions(kind: str, value: dict) -> list[int]:
    """The candidate(s) this answer prefers most; empty when it prefers none."""
    if kind in (Kind.BINARY, Kind.LIKERT):
        winner = value["winner"]
        return [winner] if winner in (0, 1) else []
    if kind == Kind.RANKING:
        return list(value["ranking"][0])
    if kind == Kind.RATING:
        scores = value["scores"]
        top = max(scores)
        return [p for p, s in enumerate(scores) if s == top]
    raise ValueError(f"unknown kind {kind!r}")


def gold_matches(kind: str, gold: dict, value: dict, *, rating_threshold: int = 4) -> bool:
    """Whether an answer agrees with a gold item's expected answer.

    Likert gold checks the side only (strength is a matter of taste); ranking gold checks the
    top tier; rating gold checks the good/bad label of every candidate.
    """
    if kind in (Kind.BINARY, Kind.LIKERT):
        return gold.get("winner") == value.get("winner")
    if kind == Kind.RANKING:
        expected = gold.get("ranking") or []
        if not expected:
            return False
        top = expected[0] if isinstance(expected[0], list) else [expected[0]]
        return sorted(top) == sorted(value["ranking"][0])
    if kind == Kind.RATING:
        expected = gold.get("scores") or []
        got = value["scores"]
        return len(expected) == len(got) and all((e >= rating_threshold) == (g >= rating_threshold) for e, g in zip(expected, got))
    return False


def settings_errors(project) -> dict[str, str]:
    """Field -> message for kind settings that cannot work together."""
    errors: dict[str, str] = {}
    if project.kind == Kind.LIKERT and project.likert_labels and len(project.likert_labels) != project.likert_points:
        errors["likert_labels"] = f"give one label per point ({project.likert_points}) or none"
    if project.kind == Kind.RANKING and project.ranking_min_k > project.ranking_k:
        errors["ranking_min_k"] = f"must not be above the most responses per item ({project.ranking_k})"
    if project.rating_min >= project.rating_max:
        errors["rating_max"] = "must be greater than the minimum rating"
    elif not project.rating_min <= project.rating_threshold <= project.rating_max:
        errors["rating_threshold"] = f"must lie between {project.rating_min} and {project.rating_max}"
    if project.kind == Kind.RATING and project.rating_labels and len(project.rating_labels) != project.rating_max - project.rating_min + 1:
        errors["rating_labels"] = "give one label per score or none"
    return errors
