"""Reward-model scoring (stub; being filled in)."""
from __future__ import annotations


def score(*, model, prompt, responses) -> list[float]:
    raise NotImplementedError
