"""Fixtures for the loop tests (evaluation, generation batches, demo loop): a tiny registered
reward model beside the tiny policies of conftest.py. Imported by those test files only."""
from __future__ import annotations

from pathlib import Path

import pytest

from training.models import ModelArtifact


@pytest.fixture
def tiny_reward(db, settings):
    def make(name: str = "tiny-rm", seed: int = 1) -> ModelArtifact:
        from tests.tiny_models import tiny_reward_model
        from tests.training.conftest import build_tokenizer

        tokenizer = build_tokenizer()
        folder = Path(settings.ARTIFACT_ROOT) / "models" / name
        folder.mkdir(parents=True)
        tiny_reward_model(tokenizer, seed=seed).save_pretrained(folder, safe_serialization=True)
        tokenizer.save_pretrained(folder)
        return ModelArtifact.objects.create(name=name, kind=ModelArtifact.Kind.REWARD_MODEL, source=ModelArtifact.Source.LOCAL, path=f"models/{name}")

    return make
