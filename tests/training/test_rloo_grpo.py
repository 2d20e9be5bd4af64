"""RLOO and GRPO (TRL) learn what a reward model wants, on the same tiny pieces as PPO."""
from __future__ import annotations

import pytest

pytest.importorskip("trl")

from tests.training import tiny_rl

pytestmark = [pytest.mark.slow, pytest.mark.dbless]

FAST = dict(per_device_train_batch_size=16, num_generations=4, max_completion_length=6, temperature=1.0,
            logging_steps=1, eval_prompts=10, seed=0, warmup_steps=0, lr_scheduler_type="constant")

# RLOO folds beta x KL into a reward whose spread is small here (scores ~0.1): a lighter KL weight.
PER_METHOD = {"rloo": dict(learning_rate=2e-2, beta=0.02, normalize_advantages=True), "grpo": dict(learning_rate=1e-2, beta=0.1)}


@pytest.fixture
def setup(tmp_path):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    tok = tiny_rl.tokenizer()
    yield dict(policy=tiny_rl.save_policy(tmp_path / "policy", tok), reward=tiny_rl.save_reward_model(tmp_path / "rm", tok),
               snapshot=tiny_rl.write_prompt_snapshot(tmp_path / "snapshot", tiny_rl.PROMPTS, tiny_rl.HELD_OUT))
    torch.set_num_threads(threads)


@pytest.mark.parametrize("method", ["rloo", "grpo"])
def test_it_raises_the_reward_model_score_while_the_kl_stays_bounded(tmp_path, setup, method):
    from training.recipes.catalog import get

    recipe = get(method)
    progress = tiny_rl.FakeProgress()
    ctx = tiny_rl.context(tmp_path, method=method, config={**FAST, "max_steps": 24, **PER_METHOD[method]}, use_lora=True, progress=progress, **setup)
    result = recipe.train_fn()(ctx)
    points = progress.points
    assert len(points) == 24
    first = sum(p["score"] for p in points[:5]) / 5
    last = sum(p["score"] for p in points[-5:]) / 5
    assert last > first + 0.3, f"score went from {first:.3f} to {last:.3f}"
    # TRL logs kl only when beta > 0: a point without it means the KL term never reached TRL.
    assert all("kl" in p for p in points), [sorted(p) for p in points[:1]]
    # Per token (TRL's k3 token mean). Measured max: 4.7 (RLOO), 5.5 (GRPO); without the KL term it passes 9.
    assert max(p["kl"] for p in points) < 8.0, [round(p["kl"], 2) for p in points]
    assert {"score", "response_length", "entropy"} <= set(points[-1])
    assert result["global_step"] == 24
    assert result["test"]["policy_score_mean"] > result["test"]["reference_score_mean"]
    assert (tmp_path / "out" / "adapter_config.json").exists()


def test_it_resumes_a_stopped_grpo_run_from_its_last_checkpoint(tmp_path, setup):
    from training.recipes.catalog import get

    config = {**FAST, **PER_METHOD["grpo"], "max_steps": 4, "save_steps": 2, "eval_prompts": 2}
    train = get("grpo").train_fn()
    stopped = tiny_rl.FakeProgress(stop_after=3)
    with pytest.raises(tiny_rl.FakeProgress.Stopped):
        train(tiny_rl.context(tmp_path, method="grpo", config=config, use_lora=True, progress=stopped, **setup))
    assert stopped.step == 3 and (tmp_path / "checkpoints" / "checkpoint-2").is_dir()
    assert not (tmp_path / "out").exists()

    progress = tiny_rl.FakeProgress()
    result = train(tiny_rl.context(tmp_path, method="grpo", config=config, use_lora=True, progress=progress, **setup))
    assert (result["resumed_from_step"], result["global_step"]) == (2, 4)
    assert [p["step"] for p in progress.points] == [3, 4]
    assert (tmp_path / "out" / "adapter_config.json").exists()


def test_it_keeps_the_trained_policy_when_the_evaluation_fails(tmp_path, setup):
    """Temperature 6 trains, but evaluation sampling refuses it (training/rl/sampling.py): the run used
    to fail after training, with no model saved. The policy is saved first; the failure is a figure."""
    from training.recipes.catalog import get

    config = {**FAST, **PER_METHOD["grpo"], "max_steps": 2, "temperature": 6.0}
    result = get("grpo").train_fn()(tiny_rl.context(tmp_path, method="grpo", config=config, use_lora=True,
                                                     progress=tiny_rl.FakeProgress(), **setup))
    assert result["global_step"] == 2 and (tmp_path / "out" / "adapter_config.json").exists()
    assert "temperature: 6.0 is outside 0..5" in result["test"]["error"]


@pytest.mark.parametrize("method,beta", [("rloo", 0.02), ("grpo", 0.3)])
def test_it_hands_the_runs_own_kl_coefficient_to_trl(tmp_path, method, beta):
    """A beta lost on the way falls back to TRL's default, which for RLOO is not 0: the learning
    test above still sees a KL then. The run's value must be the one TRL trains with."""
    import trl

    from training.recipes import online
    from training.recipes.base import config_resolve

    cfg = config_resolve(method, {**FAST, "beta": beta}, use_lora=True, device_type="cpu", bf16_supported=False, n_params=0)
    args_cls = {"rloo": trl.RLOOConfig, "grpo": trl.GRPOConfig}[method]
    args = online.trl_args(cfg, args_cls=args_cls, output_dir=tmp_path, device_type="cpu", n_rewards=1, method_args=online.method_args(cfg))
    assert args.beta == beta


def test_a_full_run_asked_for_no_evaluation_reports_none_and_no_failure(tmp_path, setup):
    """eval_prompts 0 (the loop bench's runs; every process but the main one in DDP) used to call the
    comparison with no prompts and a full policy, which looked for a LoRA adapter to switch off and
    put "evaluation failed: AttributeError" on the run's page."""
    from training.recipes.catalog import get

    config = {**FAST, **PER_METHOD["grpo"], "max_steps": 1, "eval_prompts": 0}
    progress = tiny_rl.FakeProgress()
    result = get("grpo").train_fn()(tiny_rl.context(tmp_path, method="grpo", config=config, use_lora=False, progress=progress, **setup))
    assert result["global_step"] == 1 and result["test"] == {}
    assert not any("evaluation failed" in line for line in progress.lines), progress.lines
