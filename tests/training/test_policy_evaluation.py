"""Policy against reference by a reward model, on nets in memory (training/rl/comparison.py): the
comparison that evaluation jobs and the end of online runs share."""
from __future__ import annotations

import pytest

pytest.importorskip("torch")

from tests.training import tiny_rl
from training.rl.comparison import compare
from training.rl.sampling import Sampling

pytestmark = pytest.mark.dbless  # the database plays no part: CI runs it on SQLite only


@pytest.fixture
def lora_policy(tmp_path):
    from training.rl import models as M

    tok = tiny_rl.tokenizer()
    policy = M.with_lora(M.load_policy(tiny_rl.save_policy(tmp_path / "p", tok)), task_type="CAUSAL_LM", r=4, alpha=8, dropout=0.0)
    return policy, tok, M.RewardModel(tiny_rl.token_reward_model(tok).eval(), tok)


def test_it_finds_no_kl_and_an_even_match_between_a_policy_and_itself(lora_policy):
    policy, tok, reward = lora_policy
    policy.train()  # as at the end of an online run: the comparison answers without dropout and gives the mode back
    steps = []
    r = compare(policy=policy, reference=None, tokenizer=tok, reward=reward, prompts=tiny_rl.HELD_OUT,
                sampling=Sampling(temperature=1.0, max_new_tokens=5), batch_size=4, samples_kept=3,
                on_progress=lambda done, total: steps.append((done, total)))
    assert policy.training and steps[-1] == (30, 30)
    assert r["n"] == 10 and r["wins"] + r["ties"] + r["losses"] == 10
    assert r["kl_mean"] == pytest.approx(0.0, abs=1e-5)  # a fresh adapter changes nothing
    # Same network, same seeds: the same answers, every pair a tie.
    assert r["ties"] == 10 and r["win_rate"] == 0.5 and r["ci_low"] < 0.5 < r["ci_high"]
    assert 1 <= r["policy_length_mean"] <= 5 and r["policy_length_mean"] == r["reference_length_mean"]
    assert 0 <= r["policy_finished_share"] <= 1 and r["sampling"]["temperature"] == 1.0
    assert len(r["samples"]) == 3 and r["samples"][0]["winner"] == "tie"
    assert {"prompt", "policy", "reference", "policy_score", "reference_score"} <= set(r["samples"][0])
    with pytest.raises(ValueError, match="reference"):
        compare(policy=policy.get_base_model(), reference=None, tokenizer=tok, reward=reward, prompts=tiny_rl.HELD_OUT,
                sampling=Sampling())


def test_it_gives_each_answer_the_same_log_prob_alone_or_in_a_batch(lora_policy):
    from training.rl.sampling import generate, response_logprobs

    policy, tok, _ = lora_policy
    answers = [a[0] for a in generate(net=policy, tokenizer=tok, prompts=tiny_rl.HELD_OUT, sampling=Sampling(temperature=1.0, max_new_tokens=6))]
    alone = [response_logprobs(net=policy, answers=[a], temperature=1.0)[0] for a in answers]
    batched = response_logprobs(net=policy, answers=answers, temperature=1.0, batch_size=4)
    assert batched == pytest.approx(alone, abs=1e-4) and all(x < 0 for x in batched)
