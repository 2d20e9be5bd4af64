"""Faults of the first training code, each pinned by a test that failed before its fix."""
from __future__ import annotations

import pytest

from tests.training.conftest import preference_rows
from training.models import ModelArtifact, TrainingRun
from training.recipes.base import config_resolve
from training.runs.services import run_create

pytestmark = pytest.mark.dbless  # the database plays no part: CI runs it on SQLite only

FAST = {"num_train_epochs": 2, "per_device_train_batch_size": 16, "learning_rate": 1e-2, "max_length": 64,
        "logging_steps": 4, "save_steps": 1000, "sample_prompts": 2, "sample_max_new_tokens": 4}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_it_keeps_a_full_dpo_model_trained_with_precomputed_reference_log_probs(project, tiny_model, make_snapshot):
    # Before: TRL refused evaluate() on a new dataset after training (no reference kept in memory),
    # the run failed and the trained model was never saved.
    base = tiny_model()
    snapshot = make_snapshot(project, preference_rows(96, seed=41), preference_rows(32, seed=42))
    run = run_create(project=project, snapshot=snapshot, base_model=base, method="dpo", use_lora=False,
                     config={**FAST, "precompute_ref_log_probs": True})
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.SUCCEEDED, run.log_tail
    test = run.result["test"]
    assert "error" not in test and test["test_pairs"] == 32 and test["accuracy"] > 0.6, test
    policy = ModelArtifact.objects.get(run=run)
    assert not policy.is_adapter and policy.config["precompute_ref_log_probs"] is True


@pytest.mark.parametrize(("device", "bf16_supported", "setting", "expected"), [
    ("cuda", True, False, "float32"),   # the user said no bf16: the frozen LoRA base stays fp32 (before: bf16 anyway)
    ("cuda", True, None, "bfloat16"),   # auto on a bf16 GPU
    ("cuda", False, None, "float32"),   # a GPU without bf16
    ("cpu", False, True, "float32"),    # CPU: bf16 is turned off whatever the setting
])
def test_it_loads_the_lora_base_in_the_dtype_the_config_says(device, bf16_supported, setting, expected):
    import torch

    from training.recipes.common import load_dtype

    cfg = config_resolve("dpo", {"bf16": setting}, use_lora=True, device_type=device, bf16_supported=bf16_supported, n_params=10**6)
    assert load_dtype(cfg, use_lora=True) == getattr(torch, expected)
    assert load_dtype(cfg, use_lora=False) == torch.float32  # full training keeps fp32 master weights


@pytest.mark.slow
def test_it_puts_the_margin_into_the_reward_loss(tmp_path):
    """The same model and batch, with and without the margin column: the losses must differ, and
    each must be the Bradley-Terry loss computed by hand (-log σ(r_c - r_r - m), m = 3 or nothing).
    Before: the test only checked that a run with use_margin succeeded, which it also did when the
    margin was dropped."""
    import datasets
    import torch
    import torch.nn.functional as F

    from tests.training.conftest import build_tiny_model
    from training.recipes import reward
    from training.recipes.common import load_tokenizer

    folder = build_tiny_model(tmp_path / "m")
    ds = datasets.Dataset.from_list([{**r, "margin": 3.0} for r in preference_rows(8, seed=43)])
    losses, by_hand = {}, {}
    for use_margin in (False, True):
        cfg = config_resolve("reward", {"use_margin": use_margin, "max_length": 64, "group_by_length": False},
                             use_lora=False, device_type="cpu", bf16_supported=False, n_params=1)
        model = reward.model_load(path=folder, dtype=torch.float32).eval()
        trainer = reward.trainer_build(cfg=cfg, model=model, tokenizer=load_tokenizer(folder), train_ds=ds, use_lora=False,
                                       output_dir=tmp_path / f"out-{use_margin}", device_type="cpu")
        examples = [trainer.train_dataset[i] for i in range(8)]
        batch = trainer.data_collator([{k: ex[k] for k in ("chosen_ids", "rejected_ids", "margin") if k in ex} for ex in examples])
        assert ("margin" in batch) == use_margin
        with torch.no_grad():
            losses[use_margin] = float(trainer.compute_loss(model, dict(batch)))
            scores = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.squeeze(-1)
        chosen, rejected = torch.chunk(scores, 2)
        by_hand[use_margin] = float(-F.logsigmoid(chosen - rejected - (3.0 if use_margin else 0.0)).mean())
    assert losses[True] == pytest.approx(by_hand[True], abs=1e-5) and losses[False] == pytest.approx(by_hand[False], abs=1e-5)
    # A margin of 3 asks the chosen reward to beat the rejected one by 3: a random model's loss is far larger.
    assert losses[True] > losses[False] + 1.0, losses
