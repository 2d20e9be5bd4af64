"""PPO's maths against numbers computed by hand (training/rl/ppo.py). Every expected value below
is worked out in the comment next to it, not by calling the code under test."""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from training.rl import ppo  # noqa: E402

pytestmark = pytest.mark.dbless  # the database plays no part: CI runs it on SQLite only


def t(*rows):
    return torch.tensor(rows, dtype=torch.float64)


def close(a, b, tol=1e-9):
    assert torch.allclose(torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64), atol=tol), (a, b)


# ---------------------------------------------------------------------------------------- GAE

def test_it_computes_gae_by_hand_on_a_three_token_response_without_bootstrapping():
    # r = [0, 0, 1], V = [0.5, 0.6, 0.7], gamma = 0.9, lambda = 0.8, terminal after t=2.
    # delta_2 = 1 + 0 - 0.7 = 0.3                 A_2 = 0.3
    # delta_1 = 0 + 0.9*0.7 - 0.6 = 0.03          A_1 = 0.03 + 0.72*0.3 = 0.246
    # delta_0 = 0 + 0.9*0.6 - 0.5 = 0.04          A_0 = 0.04 + 0.72*0.246 = 0.21712
    adv, ret = ppo.gae(t([0, 0, 1]), t([0.5, 0.6, 0.7]), t([1, 1, 1]), gamma=0.9, lam=0.8)
    close(adv, t([0.21712, 0.246, 0.3]))
    close(ret, t([0.71712, 0.846, 1.0]))


def test_it_bootstraps_from_the_value_after_a_cut_rollout():
    # As above with V(s_3) = 2: delta_2 = 1 + 0.9*2 - 0.7 = 2.1; A_2 = 2.1
    # A_1 = 0.03 + 0.72*2.1 = 1.542;  A_0 = 0.04 + 0.72*1.542 = 1.15024
    adv, _ = ppo.gae(t([0, 0, 1]), t([0.5, 0.6, 0.7]), t([1, 1, 1]), gamma=0.9, lam=0.8, last_values=t(2.0))
    close(adv, t([1.15024, 1.542, 2.1]))


def test_it_ends_each_sequence_at_its_own_last_token_and_ignores_padding():
    # Row 0 has 2 real tokens then padding whose (garbage) rewards and values must not leak in.
    # gamma = lambda = 1: A_t = sum of future rewards - V_t. Row 0: r = [0, 2], V = [1, 1]
    # A_1 = 2 - 1 = 1; A_0 = (0 + 1 - 1) + 1 = 1. Row 1 (3 tokens): r = [1, 0, 1], V = [0, 0, 0]
    # -> A = [2, 1, 1].
    rewards = t([0, 2, 99], [1, 0, 1])
    values = t([1, 1, 50], [0, 0, 0])
    mask = t([1, 1, 0], [1, 1, 1])
    adv, ret = ppo.gae(rewards, values, mask, gamma=1.0, lam=1.0)
    close(adv, t([1, 1, 0], [2, 1, 1]))
    close(ret, t([2, 2, 0], [2, 1, 1]))
    # Bootstrapping applies at each row's own end: row 0 after its 2nd token, row 1 after its 3rd.
    adv, _ = ppo.gae(rewards, values, mask, gamma=1.0, lam=1.0, last_values=t(10.0, 10.0))
    close(adv, t([11, 11, 0], [12, 11, 11]))


# ---------------------------------------------------------------------------------- the losses

def test_it_clips_the_surrogate_exactly_at_the_boundaries():
    # clip = 0.2. Four tokens, ratio r = exp(logp - old):
    #   r = 1.5, A = +1: unclipped -1.5, clipped -1.2 -> max = -1.2 (clipped)
    #   r = 0.5, A = +1: unclipped -0.5, clipped -0.8 -> max = -0.5 (not clipped: the pessimistic side)
    #   r = 0.5, A = -1: unclipped  0.5, clipped  0.8 -> max =  0.8 (clipped)
    #   r = 1.1, A = -2: inside [0.8, 1.2]: both 2.2 -> 2.2 (not clipped)
    # mean = (-1.2 - 0.5 + 0.8 + 2.2) / 4 = 0.325; clip fraction 2/4
    ratios = t([1.5, 0.5, 0.5, 1.1])
    old = t([-1.0, -1.0, -1.0, -1.0])
    logp = old + ratios.log()
    adv = t([1.0, 1.0, -1.0, -2.0])
    loss, clipfrac, approx_kl = ppo.policy_loss(logp, old, adv, torch.ones(4, dtype=torch.float64), 0.2)
    close(loss, 0.325)
    close(clipfrac, 0.5)
    expected_kl = 0.5 * sum(math.log(r) ** 2 for r in (1.5, 0.5, 0.5, 1.1)) / 4
    close(approx_kl, expected_kl)
    # Exactly at 1 + clip the two sides are equal: the clip does not count as having decided.
    loss, clipfrac, _ = ppo.policy_loss(old + math.log(1.2), old, torch.ones(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64), 0.2)
    close(loss, -1.2, 1e-12)
    close(clipfrac, 0.0)


def test_it_clips_the_value_loss_around_the_old_values():
    # clip = 0.5, R = 1 everywhere.
    #   V_old = 0, V = 2:  unclipped (2-1)^2 = 1, clipped V = 0.5 -> (0.5-1)^2 = 0.25 -> 1 (max)
    #   V_old = 0, V = -1: unclipped 4, clipped V = -0.5 -> 2.25 -> 4
    #   V_old = 3, V = 1:  unclipped 0, clipped V = 2.5 -> 2.25 -> 2.25 (clipped side is larger)
    # loss = 0.5 * mean(1, 4, 2.25) = 0.5 * 7.25 / 3; clip fraction: only the third, 1/3
    loss, clipfrac = ppo.value_loss(t([2.0, -1.0, 1.0]), t([0.0, 0.0, 3.0]), t([1.0, 1.0, 1.0]), torch.ones(3, dtype=torch.float64), 0.5)
    close(loss, 0.5 * 7.25 / 3)
    close(clipfrac, 1 / 3)


def test_it_leaves_prompt_and_padding_tokens_out_of_the_losses():
    # Only the middle token counts: r = 2 with A = 1 clipped to 1.2 -> loss -1.2. The masked
    # tokens carry values that would change the mean if they leaked in.
    mask = t([0.0, 1.0, 0.0])
    old = t([0.0, 0.0, 0.0])
    loss, clipfrac, _ = ppo.policy_loss(t([5.0, math.log(2.0), -5.0]), old, t([100.0, 1.0, -100.0]), mask, 0.2)
    close(loss, -1.2)
    close(clipfrac, 1.0)
    vloss, _ = ppo.value_loss(t([9.0, 2.0, 9.0]), t([0.0, 2.0, 0.0]), t([-9.0, 1.0, -9.0]), mask, 0.2)
    close(vloss, 0.5)  # 0.5 * (2 - 1)^2


# ------------------------------------------------------------------------- KL and whitening

def test_it_estimates_kl_with_k1_and_k3():
    # log p = -1, log q = -2: log ratio 1. k1 = 1; k3 = (q/p - 1) - log(q/p) = e^-1 - 1 + 1 = e^-1
    # log p = -2, log q = -1: k1 = -1 (negative per token); k3 = e - 1 - 1 = e - 2
    logp, ref = t([-1.0, -2.0]), t([-2.0, -1.0])
    close(ppo.kl_per_token(logp, ref, "k1"), t([1.0, -1.0]))
    close(ppo.kl_per_token(logp, ref, "k3"), t([math.exp(-1), math.e - 2]))
    with pytest.raises(ValueError, match="kl_estimator"):
        ppo.kl_per_token(logp, ref, "k2")


def test_it_puts_the_kl_penalty_on_every_token_and_the_score_on_the_last_one():
    # kl_coef = 0.5; row 0 ends at t=1, row 1 at t=2. Score 3 and -1.
    kl = t([0.2, 0.4, 0.0], [1.0, 0.0, 2.0])
    mask = t([1, 1, 0], [1, 1, 1])
    rewards = ppo.token_rewards(t(3.0, -1.0), kl, mask, 0.5)
    close(rewards, t([-0.1, -0.2 + 3.0, 0.0], [-0.5, 0.0, -1.0 - 1.0]))


def test_it_whitens_over_unmasked_entries_only():
    # Entries 1, 2, 3 (the 100 is masked): mean 2, unbiased variance ((1 + 0 + 1) / 2) = 1
    # -> whitened [-1, 0, 1]; the masked entry becomes 0. shift_mean=False adds the mean back.
    x, mask = t([1.0, 2.0, 3.0, 100.0]), t([1.0, 1.0, 1.0, 0.0])
    close(ppo.whiten(x, mask), t([-1.0, 0.0, 1.0, 0.0]), 1e-6)
    close(ppo.whiten(x, mask, shift_mean=False), t([1.0, 2.0, 3.0, 0.0]), 1e-6)


def test_it_masks_each_response_after_its_first_eos():
    eos = 7
    responses = torch.tensor([[3, 7, 7, 7], [3, 4, 5, 6], [7, 1, 2, 7]])
    mask, ended = ppo.truncate_after_eos(responses, eos)
    assert mask.int().tolist() == [[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]]
    assert ended.tolist() == [True, False, True]


def test_it_computes_log_probs_entropy_and_explained_variance():
    # logits [0, ln 3]: softmax [1/4, 3/4]; log p(token 1) = ln 0.75; entropy = -(.25 ln .25 + .75 ln .75)
    logits = t([0.0, math.log(3.0)]).view(1, 1, 2)
    close(ppo.logprobs_of(logits, torch.tensor([[1]])), t([math.log(0.75)]).view(1, 1))
    close(ppo.entropy_from_logits(logits), t([-(0.25 * math.log(0.25) + 0.75 * math.log(0.75))]).view(1, 1))
    # returns [1, 2, 3], values [1, 2, 2]: var(R) = 2/3, var(R - V) = var(0, 0, 1) = 2/9 -> 1 - 1/3
    close(ppo.explained_variance(t(1.0, 2.0, 2.0), t(1.0, 2.0, 3.0), torch.ones(3, dtype=torch.float64)), 2 / 3)


def test_it_adapts_the_kl_coefficient_towards_its_target():
    # KL 12 against target 6: error +1 clipped to +0.2; 100 samples over horizon 1000 -> x 1.02
    ctl = ppo.KLController(0.1, target=6.0, horizon=1000)
    ctl.update(12.0, 100)
    close(ctl.value, 0.1 * 1.02)
    # KL 4.5 against 6: error -0.25 clipped to -0.2 -> x 0.98
    ctl.update(4.5, 100)
    close(ctl.value, 0.1 * 1.02 * 0.98)
    fixed = ppo.KLController(0.1)
    fixed.update(100.0, 100)
    assert fixed.value == 0.1


# ------------------------------------------------------------------------ missing-EOS penalty

def test_it_takes_the_missing_eos_penalty_off_the_reward_of_a_response_that_never_ends():
    # Two 3-token responses, eos = 7. Row 0 ends at its 2nd token; row 1 never ends (it is cut at
    # max_new_tokens). The reward model gives both the raw score 3; normalised with mean 1 and std 2
    # that is (3 - 1) / 2 = 1 for each. missing_eos_penalty = 0.5: row 0 keeps 1, row 1 gets
    # 1 - 0.5 = 0.5. The raw scores (what the charts show) stay 3 and 3.
    from types import SimpleNamespace

    mask, ended = ppo.truncate_after_eos(torch.tensor([[3, 7, 0], [3, 4, 5]]), eos_id=7)
    trainer = SimpleNamespace(cfg=SimpleNamespace(missing_eos_penalty=0.5), device=torch.device("cpu"), reward_mean=1.0,
                              reward_std=2.0, reward=lambda prompts, texts: torch.tensor([3.0, 3.0]))
    scores, raw = ppo.PPOTrainer.score(trainer, ["p0", "p1"], ["a", "b c d"], ended)
    close(scores, t(1.0, 0.5))
    close(raw, t(3.0, 3.0))
    # The penalised score lands on each response's own last token (KL 0 here): row 0 at t=1, row 1 at t=2.
    rewards = ppo.token_rewards(scores.double(), torch.zeros(2, 3, dtype=torch.float64), mask.double(), 0.2)
    close(rewards, t([0.0, 1.0, 0.0], [0.0, 0.0, 0.5]))
    # Penalty 0 (what the learning test sets): both responses get the same reward.
    trainer.cfg.missing_eos_penalty = 0.0
    close(ppo.PPOTrainer.score(trainer, ["p0", "p1"], ["a", "b c d"], ended)[0], t(1.0, 1.0))
