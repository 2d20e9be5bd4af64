"""KTO runs: TRL's KTOTrainer on a snapshot's `unpaired` split (ratings: desirable or not). The
policy's implicit reward takes the sign of the label on held-out rows, the class weights default
from the balance as TRL's docs advise, and the policy is registered with its lineage."""
from __future__ import annotations

import pytest

from tests.training.conftest import unpaired_rows
from training.models import ModelArtifact, TrainingRun
from training.recipes.kto import class_weights
from training.runs.services import run_create

pytestmark = pytest.mark.dbless  # the database plays no part: CI runs it on SQLite only

FAST = {"num_train_epochs": 2, "per_device_train_batch_size": 16, "learning_rate": 1e-2, "max_length": 64,
        "logging_steps": 4, "save_steps": 1000, "sample_prompts": 2, "sample_max_new_tokens": 6}


def test_it_weighs_the_classes_from_their_balance():
    # TRL: desirable_weight·D / (undesirable_weight·U) between 1 and 4/3.
    assert class_weights([True] * 25 + [False] * 75, None, None) == (3.0, 1.0)
    assert class_weights([True] * 60 + [False] * 50, None, None) == (1.0, 1.0)
    dw, uw = class_weights([True] * 90 + [False] * 10, None, None)
    assert dw == 1.0 and 90 * dw / (10 * uw) == pytest.approx(4 / 3, rel=1e-3)
    # A set weight is kept and the auto one follows it into the range (it used to stay at 1: ratio 0.67).
    dw, uw = class_weights([True] * 25 + [False] * 75, 2.0, None)
    assert dw == 2.0 and 1 <= 25 * dw / (75 * uw) <= 4 / 3
    assert class_weights([True] * 10, None, None) == (1.0, 1.0)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("use_lora", [False, True], ids=["full", "lora"])
def test_it_learns_which_answers_are_desirable(project, owner, tiny_model, make_snapshot, use_lora, client_for):
    base = tiny_model()
    # A third desirable: the auto weights lift the desirable rows' loss.
    snapshot = make_snapshot(project, unpaired_rows(192, seed=31, desirable_share=0.33), unpaired_rows(60, seed=32), fmt="unpaired")
    config = {**FAST, "learning_rate": 3e-2} if use_lora else FAST
    run = run_create(project=project, snapshot=snapshot, base_model=base, method="kto", use_lora=use_lora, config=config, created_by=owner)
    run.refresh_from_db()

    assert run.status == TrainingRun.Status.SUCCEEDED, run.log_tail
    test = run.result["test"]
    assert test["test_rows"] == test["accuracy_n"] == 60
    if use_lora:
        # A LoRA adapter on a random 32-wide model learns slowly: the ordering shows, the sign not yet.
        assert test["reward_desirable_mean"] > test["reward_undesirable_mean"], test
    else:
        # Before training every implicit reward is 0 (accuracy 0): demand clearly better than chance
        # (0.75 on 60 rows: the 95% interval's lower end is above 0.6).
        assert test["accuracy"] >= 0.75, (test, run.log_tail)
        assert test["reward_desirable_mean"] > 0 > test["reward_undesirable_mean"]
    resolved = run.result["resolved_config"]
    balance = run.result["class_balance"]
    assert resolved["desirable_weight"] > 1.0 == resolved["undesirable_weight"]
    assert balance["desirable"] * resolved["desirable_weight"] / balance["undesirable"] == pytest.approx(1.0, rel=1e-3)
    assert run.result["samples"] and "policy" in run.result["samples"][0]

    policy = ModelArtifact.objects.get(run=run)
    assert policy.kind == ModelArtifact.Kind.POLICY and policy.base_model == base and policy.is_adapter == use_lora
    page = client_for(owner).get(f"/training/runs/{run.pk}/").content.decode()
    assert "of 60; 95% CI" in page and "KTO policy" in page
