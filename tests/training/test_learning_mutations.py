"""Tests that fail when the learning code is broken in the ways issue 19 lists (bench/mutants.py
applies each break and runs the tests named for it). Each one checks a number a user of the run
would see change: the returns PPO learns from, the normalisation it reports, the critic it starts
from, and the loss TRL computes for DPO, KTO and the reward model on one fixed batch.

The expected values are worked out in the comments, not by calling the code under test. The PPO
tests drive the real PPOTrainer.__init__ and rollout(); only sampling and the networks' forward
passes are replaced by fixed numbers, so the maths between them is the production code."""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from tests.training import tiny_rl  # noqa: E402
from training.rl import ppo  # noqa: E402

pytestmark = pytest.mark.dbless  # the database plays no part


def close(a, b, tol=1e-5):
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    assert torch.allclose(a, b, atol=tol), (a.tolist(), b.tolist())


# ------------------------------------------------------------------------------ PPO's rollout

LN2 = math.log(2.0)


class FixedRollout(ppo.PPOTrainer):
    """The real trainer with fixed samples: two prompts, two response tokens each (token 1 of a
    2-word vocabulary). The policy gives that token probability `policy_p[row]`, the reference
    `ref_p[row]`; the critic says 0 everywhere. Row 0 ended, row 1 was cut at max_new_tokens."""

    policy_p, ref_p = (0.5, 0.25), (0.25, 0.5)

    def __init__(self, tmp_path, *, raw_scores=(3.0, 1.0), **config):
        from training.recipes.base import config_resolve

        values = dict(per_device_train_batch_size=2, num_mini_batches=1, gradient_accumulation_steps=1, ppo_epochs=1, max_new_tokens=2,
                      temperature=1.0, gamma=1.0, lam=1.0, max_steps=1, warmup_steps=0, lr_scheduler_type="constant", seed=0)
        cfg = config_resolve("ppo", {**values, **config}, use_lora=False, device_type="cpu", bf16_supported=False, n_params=0)
        self.raw_scores = torch.tensor(raw_scores)
        self.generated_from = []
        # Stand-in networks: real modules (the optimizer needs parameters) whose forward is replaced below.
        super().__init__(cfg=cfg, policy=torch.nn.Linear(1, 1), critic=torch.nn.Linear(1, 1), reward=self._reward, tokenizer=None,
                         prompts=["p0", "p1", "p2", "p3"], progress=tiny_rl.FakeProgress(), checkpoint_dir=tmp_path,
                         ref_policy=torch.nn.Linear(1, 1))

    def _reward(self, prompts, texts):
        # Read from the response texts ("rp3" for prompt "p3"): a scorer handed the wrong argument fails.
        assert len(prompts) == len(texts) and all(t == f"r{p}" for p, t in zip(prompts, texts)), (prompts, texts)
        return torch.stack([self.raw_scores[int(t[2:]) % len(self.raw_scores)] for t in texts])

    def generate(self, prompts, *, reference=False):
        self.generated_from.append("reference" if reference else "policy")
        n = len(prompts)
        ids = torch.ones((n, 3), dtype=torch.long)  # one prompt token, two response tokens
        return ids, torch.ones_like(ids), 1, torch.ones((n, 2), dtype=torch.bool), torch.tensor([True, False][:n]), [f"r{p}" for p in prompts]

    def _logits(self, model, input_ids, attention_mask, prompt_length):
        p = torch.tensor(self.ref_p if model is self.ref_policy else self.policy_p, dtype=torch.float64)[: len(input_ids)]
        row = torch.stack([torch.log1p(-p), torch.log(p)], -1)  # log-probs of tokens 0 and 1: logits that are already normalised
        return row[:, None, :].expand(-1, input_ids.shape[1] - prompt_length, -1)

    def _values(self, critic, input_ids, attention_mask, prompt_length):
        return torch.zeros((len(input_ids), input_ids.shape[1] - prompt_length), dtype=torch.float64)


def _rollout(tmp_path, **config):
    trainer = FixedRollout(tmp_path, **{"kl_coef": 0.5, "missing_eos_penalty": 1.0, **config})
    trainer.reward_mean, trainer.reward_std = 1.0, 2.0  # as if measured at the start (tested below)
    return trainer.rollout(["p0", "p1"])


# Common to the rollouts below: raw scores 3 and 1, normalised with mean 1 / std 2 -> 1 and 0;
# row 1 never ended: missing_eos_penalty 1 -> 0. Scores: row 0 = 1, row 1 = -1, at the last token.
# Log ratio log p - log q per token: row 0 log(0.5 / 0.25) = ln 2, row 1 log(0.25 / 0.5) = -ln 2.
# gamma = lambda = 1 and V = 0: the return at t is the sum of the rewards from t to the end.


def test_it_charges_kl_coef_times_the_k1_kl_at_every_token(tmp_path):
    # k1 = the log ratio. kl_coef 0.5: rewards row 0 = [-0.5 ln2, -0.5 ln2 + 1], row 1 = [0.5 ln2, 0.5 ln2 - 1]
    # returns row 0 = [1 - ln2, 1 - 0.5 ln2], row 1 = [ln2 - 1, 0.5 ln2 - 1]
    batch = _rollout(tmp_path, kl_estimator="k1")
    close(batch.kl, [[LN2, LN2], [-LN2, -LN2]])
    close(batch.returns, [[1 - LN2, 1 - 0.5 * LN2], [LN2 - 1, 0.5 * LN2 - 1]])
    # The raw scores stay what the reward model said (the charts show them).
    close(batch.scores, [3.0, 1.0])


def test_it_scales_the_penalty_with_kl_coef(tmp_path):
    # kl_coef 2: row 0 returns [1 - 4 ln2, 1 - 2 ln2]; kl_coef 0: the scores alone, [1, 1] and [-1, -1].
    close(_rollout(tmp_path / "a", kl_coef=2.0).returns, [[1 - 4 * LN2, 1 - 2 * LN2], [4 * LN2 - 1, 2 * LN2 - 1]])
    close(_rollout(tmp_path / "b", kl_coef=0.0).returns, [[1.0, 1.0], [-1.0, -1.0]])


def test_it_uses_the_k3_estimator_inside_the_loop_when_asked(tmp_path):
    # k3 = (q/p - 1) - log(q/p). Row 0: q/p = 0.5 -> -0.5 + ln2 = 0.19315; row 1: q/p = 2 -> 1 - ln2 = 0.30685.
    # kl_coef 0.5: returns row 0 = [1 - k3_0, 1 - 0.5 k3_0], row 1 = [-1 - k3_1, -1 - 0.5 k3_1]
    k3_0, k3_1 = LN2 - 0.5, 1 - LN2
    batch = _rollout(tmp_path, kl_estimator="k3")
    close(batch.kl, [[k3_0, k3_0], [k3_1, k3_1]])
    close(batch.returns, [[1 - k3_0, 1 - 0.5 * k3_0], [-1 - k3_1, -1 - 0.5 * k3_1]])


def test_it_whitens_the_token_rewards_when_asked_and_keeps_their_mean(tmp_path):
    # k1 rewards (first test): a = 0.5 ln2 = 0.34657, b = 1 - a = 0.65343: [-a, b], [a, -b]. Mean 0
    # (so keeping the mean changes nothing); unbiased variance over the 4 tokens = 2 (a^2 + b^2) / 3.
    # Whitened: each divided by s = sqrt of that. Returns row 0 = [(b - a) / s, b / s], row 1 = [(a - b) / s, -b / s].
    a, b = 0.5 * LN2, 1 - 0.5 * LN2
    s = math.sqrt(2 * (a * a + b * b) / 3)
    close(_rollout(tmp_path, whiten_rewards=True).returns, [[(b - a) / s, b / s], [(a - b) / s, -b / s]], 1e-4)
    # Off (the default): the returns of the first test.
    close(_rollout(tmp_path / "off", whiten_rewards=False).returns, [[1 - LN2, 1 - 0.5 * LN2], [LN2 - 1, 0.5 * LN2 - 1]])


def test_it_normalises_the_score_with_the_references_samples_at_the_start(tmp_path):
    # Four reference samples, scored 1, 2, 3 and 6: mean 3, unbiased variance (4 + 1 + 0 + 9) / 3 = 14/3.
    trainer = FixedRollout(tmp_path, raw_scores=(1.0, 2.0, 3.0, 6.0), reward_norm_samples=4)
    trainer.normalise_rewards()
    assert trainer.generated_from == ["reference", "reference"]  # two batches of two, from the reference
    assert trainer.reward_mean == pytest.approx(3.0) and trainer.reward_std == pytest.approx(math.sqrt(14 / 3))
    assert "reward normalisation from 4 reference samples: mean 3, std 2.16" in trainer.progress.lines  # the run's log says so
    # And score() applies them: raw 6 -> (6 - 3) / sqrt(14/3) = 1.38873 (it ended: no penalty).
    scores, raw = trainer.score(["p3"], ["rp3"], torch.tensor([True]))
    close(scores, [3 / math.sqrt(14 / 3)])
    close(raw, [6.0])
    # normalize_reward off: the scores are used as they are.
    plain = FixedRollout(tmp_path / "plain", raw_scores=(1.0, 2.0, 3.0, 6.0), normalize_reward=False)
    plain.normalise_rewards()
    assert plain.generated_from == [] and (plain.reward_mean, plain.reward_std) == (0.0, 1.0)


# ------------------------------------------------------------------------ PPO's critic_init


@pytest.mark.parametrize("use_lora", [False, True], ids=["full", "lora"])
def test_it_starts_a_policy_initialised_critic_from_the_policys_backbone_with_zero_values(tmp_path, use_lora):
    """critic_init=policy: V = 0 everywhere at the start (a zero head) on the policy's own weights,
    not the reward model's (whose hidden size here is 16, the policy's 32)."""
    from training.recipes import ppo as recipe

    tok = tiny_rl.tokenizer()
    pieces = dict(policy=tiny_rl.save_policy(tmp_path / "policy", tok), reward=tiny_rl.save_reward_model(tmp_path / "rm", tok),
                  snapshot=tiny_rl.write_prompt_snapshot(tmp_path / "snapshot", tiny_rl.PROMPTS, tiny_rl.HELD_OUT))
    ctx = tiny_rl.context(tmp_path, method="ppo", config={"critic_init": "policy"}, use_lora=use_lora, progress=tiny_rl.FakeProgress(), **pieces)
    _, built, _ = recipe.build(ctx, device=torch.device("cpu"), bf16_ok=False)
    critic, policy = built["critic"], built["policy"]
    ids = torch.tensor([tok.encode("a question about rivers thanks please")])
    with torch.no_grad():
        values = critic(ids, torch.ones_like(ids))
    assert values.shape == ids.shape and torch.count_nonzero(values) == 0, values
    critic_embed = critic.net.get_input_embeddings().weight
    assert torch.equal(critic_embed, policy.get_input_embeddings().weight)
    # The critic learns: its head is trainable (the zero is a start, not a frozen value).
    assert any(p.requires_grad for n, p in critic.named_parameters() if "score" in n)


# ------------------------------------------------------- the TRL trainers' loss on one batch


def _trainer(tmp_path, method: str, rows: list[dict], fmt: str, config: dict, *, reward_model: bool = False):
    """The recipe's own trainer (full training, CPU) on `rows`, as train() builds it."""
    from tests.training.conftest import build_tiny_model, write_snapshot_folder
    from training.core.chat import chat_rows
    from training.recipes import dpo, kto, reward
    from training.recipes.base import config_resolve
    from training.recipes.common import causal_lm_load, load_split, load_tokenizer

    module = {"dpo": dpo, "kto": kto, "reward": reward}[method]
    base = build_tiny_model(tmp_path / "base")
    folder = write_snapshot_folder(tmp_path / "snapshot", rows, [], fmt=fmt)
    tokenizer = load_tokenizer(base)
    train_ds = chat_rows(load_split(folder, fmt, "train", tmp_path / "cache"), tokenizer)
    cfg = config_resolve(method, {"max_length": 64, "per_device_train_batch_size": len(rows), **config}, use_lora=False, device_type="cpu",
                         bf16_supported=False, n_params=0)
    model = reward.model_load(path=base) if reward_model else causal_lm_load(path=base)
    if reward_model:
        model.config.pad_token_id = tokenizer.pad_token_id
    return module.trainer_build(cfg=cfg, model=model, tokenizer=tokenizer, train_ds=train_ds, use_lora=False, output_dir=tmp_path / "out",
                                device_type="cpu")


def _loss(trainer, indices=None) -> float:
    ds = trainer.train_dataset
    batch = trainer.data_collator([ds[i] for i in (indices if indices is not None else range(len(ds)))])
    trainer.model.eval()
    with torch.no_grad():
        return float(trainer.compute_loss(trainer.model, batch))


@pytest.mark.parametrize("beta", [0.5, 0.25])
def test_it_hands_the_runs_dpo_beta_to_the_loss(tmp_path, beta):
    """IPO's loss is (d - 1/(2 beta))^2 per pair, d the difference of the chosen's and the rejected's
    log ratios to the reference. Before any step the policy is its reference: d = 0, so the loss is
    1 / (4 beta^2): 1 at beta 0.5, 4 at beta 0.25. A beta lost on the way gives TRL's default 0.1: 25."""
    from tests.training.conftest import preference_rows

    trainer = _trainer(tmp_path, "dpo", preference_rows(2, seed=1), "preference", {"beta": beta, "loss_type": "ipo"})
    assert _loss(trainer) == pytest.approx(1 / (4 * beta * beta), rel=1e-4)


def test_it_weighs_the_kto_loss_of_desirable_and_undesirable_rows_as_set(tmp_path):
    """Before any step the policy is its reference: every implicit reward and the KL estimate are 0,
    and each row's loss is its class weight x (1 - sigmoid(0)) = weight / 2. Desirable weight 3,
    undesirable 1: 0.5 x 3 = 1.5 on desirable rows, 0.5 on undesirable ones."""
    from tests.training.conftest import unpaired_rows

    rows = unpaired_rows(8, seed=1)
    trainer = _trainer(tmp_path, "kto", rows, "unpaired", {"desirable_weight": 3.0, "undesirable_weight": 1.0})
    good = [i for i, r in enumerate(rows) if r["label"]]
    bad = [i for i, r in enumerate(rows) if not r["label"]]
    assert len(good) >= 2 and len(bad) >= 2
    assert _loss(trainer, good[:2]) == pytest.approx(1.5, rel=1e-4)
    assert _loss(trainer, bad[:2]) == pytest.approx(0.5, rel=1e-4)
    # A mixed batch averages over its rows: 3 desirable and 5 undesirable -> (3 x 1.5 + 5 x 0.5) / 8 = 0.875.
    assert (len(good), len(bad)) == (3, 5) and _loss(trainer) == pytest.approx(0.875, rel=1e-4)


def test_it_puts_the_preference_margin_into_the_reward_models_loss(tmp_path):
    """-log sigmoid(r_chosen - r_rejected - margin), with the score head zeroed (every reward 0):
    softplus(margin) per pair. Margins 0 and 2: (ln 2 + ln(1 + e^2)) / 2 = (0.693147 + 2.126928) / 2.
    Without use_margin the column is dropped: ln 2 for both."""
    from tests.training.conftest import preference_rows

    rows = [{**r, "margin": m} for r, m in zip(preference_rows(2, seed=1), (0.0, 2.0))]
    with_margin = _trainer(tmp_path / "m", "reward", rows, "preference", {"use_margin": True}, reward_model=True)
    without = _trainer(tmp_path / "n", "reward", rows, "preference", {"use_margin": False}, reward_model=True)
    for trainer in (with_margin, without):
        with torch.no_grad():
            trainer.model.score.weight.zero_()
    assert _loss(with_margin) == pytest.approx((math.log(2) + math.log1p(math.exp(2))) / 2, rel=1e-5)
    assert _loss(without) == pytest.approx(math.log(2), rel=1e-5)


def test_it_sizes_the_run_and_its_schedule_from_the_config(tmp_path):
    """Updates per pass, total updates, the KL controller, the optimizer and the schedule, as a run
    reports them: 4 prompts in rollouts of 2 -> 2 updates a pass; 2 passes -> 4 updates; one PPO
    epoch of one minibatch -> 4 optimizer steps. Linear schedule with warmup 0.5 (a share: 2 of the 4
    steps): lr x 0, 0.5, 1, 0.5, 0."""
    trainer = FixedRollout(tmp_path, max_steps=0, num_train_epochs=2.0, learning_rate=0.1, weight_decay=0.25, lr_scheduler_type="linear",
                           warmup_steps=0.5, adaptive_kl=True, kl_target=3.0, kl_horizon=100)
    assert (trainer.updates_per_epoch, trainer.total_updates, trainer.step) == (2, 4, 0)
    assert trainer.kl_ctl.state_dict() == {"value": trainer.cfg.kl_coef, "target": 3.0, "horizon": 100}
    group = trainer.optimizer.param_groups[0]
    assert group["weight_decay"] == 0.25
    lrs = []
    for _ in range(5):
        lrs.append(group["lr"])
        trainer.optimizer.step()
        trainer.scheduler.step()
    assert lrs == pytest.approx([0.0, 0.05, 0.1, 0.05, 0.0])
    assert trainer.timings == dict.fromkeys(("generation", "scoring", "forward", "update"), 0.0) and trainer.tokens == {"rollout": 0, "train": 0}
    # max_steps wins over the passes; a fixed coefficient has no target.
    fixed = FixedRollout(tmp_path / "b", max_steps=3, num_train_epochs=2.0)
    assert fixed.total_updates == 3 and fixed.kl_ctl.target is None
    # Too few prompts for one rollout, or a batch that the minibatches do not divide: refused in words
    # (the second by the config itself where it checks, else by the trainer; both name the setting).
    with pytest.raises(ValueError, match="4 prompts: a rollout needs at least 8"):
        FixedRollout(tmp_path / "c", per_device_train_batch_size=8)
    with pytest.raises(ValueError, match="num_mini_batches"):
        FixedRollout(tmp_path / "d", per_device_train_batch_size=3, num_mini_batches=2)


# ------------------------------------------------ edges of PPO's maths that mutmut found untested


def t(*rows):
    return torch.tensor(rows, dtype=torch.float64)


def test_it_clips_the_value_loss_upwards_too_and_counts_only_decisive_clips():
    # clip 0.5, R = 3:
    #   V_old = 0, V = 2:    unclipped (2 - 3)^2 = 1, clipped V = 0.5 -> 6.25 -> 6.25 (the clip decided)
    #   V_old = 0, V = 0.25: inside the range, both (0.25 - 3)^2 = 7.5625 -> not counted as clipped
    # loss = 0.5 * (6.25 + 7.5625) / 2; clip fraction 1/2
    loss, clipfrac = ppo.value_loss(t(2.0, 0.25), t(0.0, 0.0), t(3.0, 3.0), torch.ones(2, dtype=torch.float64), 0.5)
    close(loss, 0.5 * (6.25 + 7.5625) / 2)
    close(clipfrac, 0.5)


def test_it_handles_one_token_responses_equal_values_and_the_default_estimator():
    # A one-token response (the policy said eos at once) gets its score on that token.
    close(ppo.token_rewards(t(3.0), t([0.0, 0.0]), t([1, 0]), 0.5), t([3.0, 0.0]))
    # All equal (variance 0): whitened to zeros, not NaN (the epsilon under the square root).
    close(ppo.whiten(t(2.0, 2.0, 2.0), t(1.0, 1.0, 1.0)), t(0.0, 0.0, 0.0))
    # k1 unless asked: log p - log q.
    close(ppo.kl_per_token(t(-1.0, -2.0), t(-2.0, -1.0)), t(1.0, -1.0))
    # One entropy per position: logits [0, ln 3] -> softmax [1/4, 3/4]; [0, 0] -> uniform, ln 2.
    logits = t([0.0, math.log(3.0)], [0.0, 0.0]).view(1, 2, 2)
    close(ppo.entropy_from_logits(logits), t([-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)), math.log(2.0)]).view(1, 2))
