"""SFT runs: TRL's SFTTrainer on a snapshot's `sft` split. The tuned model answers like the
demonstrations (lower loss and perplexity on held-out completions than the base model), its
samples sit beside the base model's, and it is registered as a policy with its lineage."""
from __future__ import annotations

import pytest

from tests.training.conftest import sft_rows
from training.models import ModelArtifact, TrainingRun
from training.runs.services import run_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.dbless]

FAST = {"num_train_epochs": 2, "per_device_train_batch_size": 16, "learning_rate": 1e-2, "max_length": 64,
        "logging_steps": 4, "save_steps": 1000, "sample_prompts": 3, "sample_max_new_tokens": 6}


def test_it_learns_the_demonstrations_and_shows_samples_beside_the_base(project, owner, tiny_model, make_snapshot, client_for):
    base = tiny_model()
    snapshot = make_snapshot(project, sft_rows(160, seed=21), sft_rows(40, seed=22), fmt="sft")
    run = run_create(project=project, snapshot=snapshot, base_model=base, method="sft", use_lora=False, config=FAST, created_by=owner)
    run.refresh_from_db()

    assert run.status == TrainingRun.Status.SUCCEEDED, run.log_tail
    test = run.result["test"]
    assert test["test_rows"] == 40
    # A random model is near log(vocabulary) nats per token; the tuned one has learnt the answers' words.
    assert test["loss"] < 0.7 * test["base_loss"] and test["perplexity"] < test["base_perplexity"], test
    assert [m["loss"] for m in run.metrics][-1] < run.metrics[0]["loss"]
    samples = run.result["samples"]
    assert len(samples) == 3 and all({"prompt", "policy", "reference", "demonstration"} <= set(s) for s in samples)

    policy = ModelArtifact.objects.get(run=run)
    assert policy.kind == ModelArtifact.Kind.POLICY and policy.base_model == base and policy.snapshot == snapshot and not policy.is_adapter
    assert policy.config["method"] == "sft" and policy.config["completion_only_loss"] is True

    page = client_for(owner).get(f"/training/runs/{run.pk}/").content.decode()
    assert "<th>perplexity</th>" in page and "<th>base_perplexity</th>" in page and "SFT policy" in page
    samples_page = client_for(owner).get(f"/training/runs/{run.pk}/samples/").content.decode()
    assert "Demonstration on record" in samples_page and "question about" in samples_page


def test_it_trains_a_lora_adapter_on_conversational_demonstrations(project, tiny_model, make_snapshot):
    base = tiny_model()
    snapshot = make_snapshot(project, sft_rows(96, seed=23, chat=True), sft_rows(24, seed=24, chat=True), fmt="sft")
    run = run_create(project=project, snapshot=snapshot, base_model=base, method="sft", use_lora=True,
                     config={**FAST, "learning_rate": 3e-2, "num_train_epochs": 1})
    run.refresh_from_db()

    assert run.status == TrainingRun.Status.SUCCEEDED, run.log_tail
    test = run.result["test"]
    assert test["loss"] < test["base_loss"], test
    assert run.result["samples"][0]["prompt"][0]["role"] == "user"
    assert ModelArtifact.objects.get(run=run).is_adapter


def test_it_fails_in_words_when_the_snapshot_has_no_demonstrations(project, tiny_model, make_snapshot):
    base = tiny_model()
    snapshot = make_snapshot(project, [], [], fmt="sft")
    run = run_create(project=project, snapshot=snapshot, base_model=base, method="sft", config=FAST)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED
    assert "sft/train.jsonl" in run.error and "no sft demonstrations to train on" in run.error
