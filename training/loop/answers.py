"""Answers already made. generate() is deterministic by design (one seed per batch position): the
same policy, sampling (with its seed), prompts and batch size on the same kind of device give the
same answers. A generation batch therefore keeps each policy's answers on disk and a later batch
asking for exactly those takes them instead of generating again, which is what a round of the
loop does all the time: this round's policy against the base and against the previous round's
policy on the same held-out prompts, the base and the previous policy having answered them
already (bench/loop_rounds.py: three of every four held-out answers after round 1).

The key names the model by its id, folder and registration time (a test database that reuses an
id gets another time), so a retrained or re-registered model never meets an older model's
answers, and the torch and transformers versions, so an upgrade never serves answers the new
versions would not give. A file that cannot be read is a miss: the answers are made again and the file replaced.
Files live under ARTIFACT_ROOT/answers/model-<id>/, one folder per model, so an operator can
clear one model's answers, or all of them, with rm."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from django.conf import settings

from training.registry.models import ModelArtifact


def answers_path(*, model: ModelArtifact, sampling: dict, k: int, batch_size: int, device: str, prompts: list) -> Path:
    """Where the answers of this exact request live (whether or not they are there yet)."""
    import torch
    import transformers

    # Another torch or transformers may sample other tokens from the same seed: an upgrade starts afresh.
    request = {"model": [model.pk, model.path, model.created_at.isoformat() if model.created_at else None],
               "sampling": sampling, "k": k, "batch_size": batch_size, "device": device,
               "versions": [str(torch.__version__), transformers.__version__],
               "prompts": hashlib.sha256(json.dumps(prompts, sort_keys=True).encode()).hexdigest()}
    digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()
    return Path(settings.ARTIFACT_ROOT) / "answers" / f"model-{model.pk}" / f"{digest}.json"


def answers_read(path: Path, *, prompts: int, k: int) -> list[list[dict]] | None:
    """The kept answers, or None where there are none (or none that fit: a damaged file)."""
    try:
        answers = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(answers, list) or len(answers) != prompts or any(len(row) != k for row in answers):
        return None
    return answers


def answers_keep(path: Path, answers: list[list[dict]]) -> None:
    """Write through a temporary file and rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.partial")
    partial.write_text(json.dumps(answers), encoding="utf-8")
    os.replace(partial, path)
