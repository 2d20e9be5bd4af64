"""Policy against reference by a reward model (training/rl/evaluation.py)."""
from __future__ import annotations

import pytest

pytest.importorskip("torch")

from tests.training import tiny_rl
from training.rl.evaluation import compare, wilson


def test_it_gives_the_wilson_interval_by_hand():
    # 5 of 10, z = 1.96: centre (0.5 + 0.19208) / 1.38416 = 0.5, half 1.96 sqrt(0.025 + 0.009604) / 1.38416 = 0.26341
    low, high = wilson(5, 10)
    assert low == pytest.approx(0.23659, abs=1e-4) and high == pytest.approx(0.76341, abs=1e-4)
    # 0 of 10: the interval still has width (centre = half = 0.13877)
    assert wilson(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)


def test_it_finds_no_kl_and_an_even_match_between_a_policy_and_itself(tmp_path):
    import torch

    from training.rl import models as M

    tok = tiny_rl.tokenizer()
    policy = M.with_lora(M.load_policy(tiny_rl.save_policy(tmp_path / "p", tok)), task_type="CAUSAL_LM", r=4, alpha=8, dropout=0.0)
    reward = M.RewardModel(tiny_rl.token_reward_model(tok).eval(), tok)
    torch.manual_seed(0)
    figures, samples = compare(policy=policy, tokenizer=tok, reward=reward, prompts=tiny_rl.HELD_OUT, max_new_tokens=5, temperature=1.0, samples=3)
    assert figures["test_prompts"] == 10
    assert figures["kl_to_reference_mean"] == pytest.approx(0.0, abs=1e-5)  # a fresh adapter changes nothing
    low, high = figures["win_rate_ci95"]
    assert low <= figures["win_rate_vs_reference"] <= high and low < 0.5 < high
    assert 1 <= figures["response_length_mean"] <= 5
    assert len(samples) == 3 and {"prompt", "policy", "reference", "policy_score", "reference_score"} <= set(samples[0])
    with pytest.raises(ValueError, match="reference"):
        compare(policy=policy.get_base_model(), tokenizer=tok, reward=reward, prompts=tiny_rl.HELD_OUT)
