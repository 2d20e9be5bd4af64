"""GPU worker side of a training run (stub; being filled in)."""
from __future__ import annotations


def run_execute(*, run_id: int, worker_name: str) -> str:
    raise NotImplementedError
