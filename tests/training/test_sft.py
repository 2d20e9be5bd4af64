"""SFT runs: TRL's SFTTrainer on a snapshot's `sft` split. The tuned model answers like the
demonstrations (lower loss and perplexity on held-out completions than the base model), its
samples sit beside the base model's, and it is registered as a policy with its lineage."""
from __future__ import annotations

import pytest

from tests.training.conftest import build_tiny_model, sft_rows, write_snapshot_folder
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


@pytest.mark.parametrize("chat", [False, True], ids=["text", "conversational"])
def test_it_computes_the_loss_on_the_completion_tokens_only(tmp_path, chat):
    """The rows go the recipe's own way (snapshot split -> user turns -> SFT trainer -> its collator),
    with the recipe's default settings: the prompt's tokens carry label -100 (no loss) and every
    completion token is its own label."""
    from training.core.chat import chat_rows
    from training.recipes import sft
    from training.recipes.base import config_resolve
    from training.recipes.common import causal_lm_load, load_split, load_tokenizer

    base = build_tiny_model(tmp_path / "base")
    rows = sft_rows(4, seed=25, chat=chat)
    folder = write_snapshot_folder(tmp_path / "snapshot", rows, [], fmt="sft")
    tokenizer = load_tokenizer(base)
    train_ds = chat_rows(load_split(folder, "sft", "train", tmp_path / "cache"), tokenizer)
    cfg = config_resolve("sft", {"max_length": 64}, use_lora=False, device_type="cpu", bf16_supported=False, n_params=0)
    trainer = sft.trainer_build(cfg=cfg, model=causal_lm_load(path=base), tokenizer=tokenizer, train_ds=train_ds, use_lora=False,
                                output_dir=tmp_path / "out", device_type="cpu")
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(rows))])

    for row, ids, labels in zip(rows, batch["input_ids"].tolist(), batch["labels"].tolist()):
        prompt = row["prompt"][0]["content"] if chat else row["prompt"]
        completion = row["completion"][0]["content"] if chat else row["completion"]
        learnt = [i for i, label in zip(ids, labels) if label != -100]
        masked = [i for i, label in zip(ids, labels) if label == -100 and i != tokenizer.pad_token_id]
        # Each label is its own token (the shift happens inside the model), the prompt's words none.
        assert all(label in (-100, i) for i, label in zip(ids, labels))
        assert tokenizer.decode(learnt, skip_special_tokens=True).split() == completion.split(), (prompt, completion)
        assert prompt.split() == tokenizer.decode(masked, skip_special_tokens=True).split()
        assert learnt[-1] == tokenizer.eos_token_id  # the model learns to stop
