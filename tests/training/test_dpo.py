"""DPO runs on the same lifecycle as reward models: the policy learns to prefer polite answers
on held-out pairs (implicit reward accuracy), samples sit beside the reference, and the policy is
registered with its lineage."""
from __future__ import annotations

import pytest

from tests.training.conftest import preference_rows
from training.models import ModelArtifact, TrainingRun
from training.runs.results import wilson
from training.runs.services import run_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.dbless]

FAST = {"num_train_epochs": 2, "per_device_train_batch_size": 16, "learning_rate": 1e-2, "max_length": 64,
        "logging_steps": 4, "save_steps": 1000, "sample_prompts": 3, "sample_max_new_tokens": 6}


def test_it_learns_to_prefer_polite_answers(project, owner, tiny_model, make_snapshot):
    base = tiny_model()
    snapshot = make_snapshot(project, preference_rows(160, seed=11), preference_rows(40, seed=12))
    run = run_create(project=project, snapshot=snapshot, base_model=base, method="dpo", use_lora=False,
                     config={**FAST, "beta": 0.1}, created_by=owner)
    run.refresh_from_db()

    assert run.status == TrainingRun.Status.SUCCEEDED, run.log_tail
    test = run.result["test"]
    # Before training the policy is its reference: every implicit reward is 0 and accuracy 0.
    assert test["test_pairs"] == 40 and test["accuracy"] >= 0.8, run.log_tail
    assert wilson(round(test["accuracy"] * 40), 40)[0] > 0.6  # clearly better than chance, not by luck
    assert test["margin_mean"] > 0 and test["reward_chosen_mean"] > test["reward_rejected_mean"]
    accuracies = [m["accuracy"] for m in run.metrics if "accuracy" in m]
    assert accuracies[-1] > accuracies[0]
    samples = run.result["samples"]
    assert len(samples) == 3 and all({"prompt", "policy", "reference", "chosen", "rejected"} <= set(s) for s in samples)
    assert samples[0]["prompt"].startswith("question about")

    policy = ModelArtifact.objects.get(run=run)
    assert policy.kind == ModelArtifact.Kind.POLICY and not policy.is_adapter and policy.base_model == base
    assert policy.snapshot == snapshot and policy.config["beta"] == 0.1 and policy.config["loss_type"] == "sigmoid"


def test_it_trains_a_lora_adapter_on_chat_pairs_with_ipo_and_a_precomputed_reference(project, tiny_model, make_snapshot):
    base = tiny_model()
    snapshot = make_snapshot(project, preference_rows(160, seed=13, chat=True), preference_rows(80, seed=14, chat=True))
    config = {**FAST, "learning_rate": 3e-2, "loss_type": "ipo", "precompute_ref_log_probs": True}
    run = run_create(project=project, snapshot=snapshot, base_model=base, method="dpo", use_lora=True, config=config)
    run.refresh_from_db()

    assert run.status == TrainingRun.Status.SUCCEEDED, run.log_tail
    # A LoRA adapter on a random 32-wide model learns slowly, but it must beat chance beyond doubt:
    # the 95% interval of the accuracy on 80 held-out pairs lies above 0.5 (before: 0.5 on 40 passed).
    test = run.result["test"]
    assert test["test_pairs"] == 80 and wilson(round(test["accuracy"] * 80), 80)[0] > 0.5, (test, run.log_tail)
    assert run.result["samples"][0]["prompt"][0]["role"] == "user"
    policy = ModelArtifact.objects.get(run=run)
    assert policy.is_adapter and policy.config["loss_type"] == "ipo" and policy.config["precompute_ref_log_probs"] is True


def test_its_test_accuracy_is_a_count_of_pairs_when_the_last_batch_is_short(project, tiny_model, make_snapshot):
    """19 test pairs in batches of 8: TRL's mean of per-batch shares is not k/19; the page shows
    "k of n" beside the share, so the share must be one."""
    from training.runs.results import accuracy_figures

    base = tiny_model()
    snapshot = make_snapshot(project, preference_rows(48, seed=21), preference_rows(19, seed=22))
    config = {**FAST, "num_train_epochs": 1, "learning_rate": 3e-3, "per_device_eval_batch_size": 8, "sample_prompts": 0}
    run = run_create(project=project, snapshot=snapshot, base_model=base, method="dpo", use_lora=True, config=config)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.SUCCEEDED, run.log_tail
    test = run.result["test"]
    assert test["accuracy_n"] == 19
    k = test["accuracy"] * 19
    assert abs(k - round(k)) < 1e-9, test["accuracy"]
    assert accuracy_figures(test)["accuracy"]["k"] == round(k)
