"""PPO recipe: a policy trained against a registered reward model on a snapshot's prompts, by our
own PPO (training/rl/ppo.py; TRL has had no PPOTrainer since 1.13).

This module is read by the web process (forms, API): the config and the Recipe import no torch;
train(ctx) imports it on the worker."""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass

from training.recipes.base import MAX_BATCH, MAX_COUNT, MAX_TEMPERATURE, MAX_TOKENS, ConfigError, _f, _reworded
from training.recipes.online import (
    RLConfig, attribute_weights, evaluated, no_dropout, policy_load, register_online, reward_model_load, reward_model_specs, start,
)
from training.recipes.catalog import Metric, TrainContext
from training.recipes.common import effective_settings, lora_effective


@dataclass
class PPOConfig(RLConfig):
    """PPO (InstructGPT; Huang et al. 2023, "The N implementation details of RLHF with PPO").
    One step is one update: a rollout batch, scored, then PPO epochs over its minibatches."""

    per_device_train_batch_size: int = _reworded(RLConfig, "per_device_train_batch_size", "Prompts per rollout (one response each) on one device.",
                                                 default=16)
    gradient_accumulation_steps: int = _reworded(
        RLConfig, "gradient_accumulation_steps",
        "Micro-batches per minibatch (lowers memory). Not quite the same update: each micro-batch's loss is a mean over its own "
        "response tokens, weighted by its count of responses, so responses in a short micro-batch weigh more per token.")
    per_device_eval_batch_size: int = _reworded(RLConfig, "per_device_eval_batch_size", "Prompts per batch when evaluating on the held-out prompts.")
    num_train_epochs: float = _reworded(RLConfig, "num_train_epochs", "Passes over the prompt set (each prompt is answered once per pass).")
    max_steps: int = _reworded(RLConfig, "max_steps", "Stop after this many updates (overrides epochs when > 0).")
    max_prompt_length: int = _f(512, "Longest prompt in tokens; longer prompts lose their start.", minimum=1, maximum=MAX_TOKENS)
    max_new_tokens: int = _f(128, "Longest response in tokens. A response that has not ended by then gets missing_eos_penalty.", minimum=1, maximum=MAX_TOKENS)
    temperature: float = _f(0.7, "Sampling temperature; the same temperature divides the logits of the log-probs, so the ratio compares the sampled distribution.", minimum=0.01, maximum=MAX_TEMPERATURE)
    ppo_epochs: int = _f(4, "Passes over each rollout batch.", minimum=1, maximum=100)
    num_mini_batches: int = _f(2, "Minibatches (optimizer steps) per pass over a rollout batch.", minimum=1, maximum=MAX_BATCH)
    cliprange: float = _f(0.2, "Clip range of the policy ratio: the update keeps p/p_old within [1 - c, 1 + c].", minimum=0, maximum=1)
    cliprange_value: float = _f(0.2, "Clip range of the value update around the values at rollout time.", minimum=0, maximum=1000)
    vf_coef: float = _f(0.1, "Weight of the value loss beside the policy loss.", minimum=0, maximum=100)
    gamma: float = _f(1.0, "Discount factor over response tokens (1: the end score counts fully at every token).", minimum=0, maximum=1)
    lam: float = _f(0.95, "GAE lambda: 1 = Monte-Carlo returns (high variance), 0 = one-step TD (high bias).", minimum=0, maximum=1)
    kl_coef: float = _f(0.05, "Weight of the per-token KL penalty to the reference (the starting value when adaptive).", minimum=0, maximum=100)
    kl_estimator: str = _f("k1", "KL estimator per token: k1 = log p/q (the classic one), k3 = (q/p - 1) - log q/p (never negative, lower variance).", choices=("k1", "k3"))
    adaptive_kl: bool = _f(False, "Adapt the KL coefficient so that the KL to the reference approaches kl_target.")
    kl_target: float = _f(6.0, "Target KL per response (nats) for the adaptive coefficient.", minimum=0, maximum=1000)
    kl_horizon: int = _f(10000, "Samples over which the adaptive coefficient may change by 20%.", minimum=1, maximum=MAX_COUNT)
    normalize_reward: bool = _f(True, "Normalise scores to mean 0 / std 1 with the reference's samples at the start.")
    reward_norm_samples: int = _f(64, "Reference responses sampled at the start to normalise the reward.", minimum=2, maximum=100_000)
    whiten_rewards: bool = _f(False, "Whiten the per-token rewards of each batch (keeps their mean).")
    missing_eos_penalty: float = _f(1.0, "Subtracted from the (normalised) score of a response that never ended.", minimum=0, maximum=1000)
    # Default policy: it works with any reward model. reward_model (InstructGPT) needs a reward model
    # with the policy's tokenizer, which the demo's only browser-trainable one (MiniLM) lacks (issue 21).
    critic_init: str = _f("policy", "The critic's starting weights: the policy's backbone with a zero head (works with any reward model), "
                          "or the reward model (InstructGPT; needs a reward model with the policy's tokenizer).",
                          choices=("policy", "reward_model"))
    lora_dropout: float = _reworded(RLConfig, "lora_dropout", "Dropout on the LoRA path: PPO needs 0, as it turns every dropout off.")

    LR_DEFAULTS: typing.ClassVar[tuple[float, float]] = (3e-5, 1e-6)

    @classmethod
    def check(cls, values: dict) -> None:
        if values["lora_dropout"]:
            # Refused rather than honoured: dropout would make the log-probs of the rollout and of the
            # update differ for the same weights, and the ratio and KL would be noise (no_dropout).
            raise ConfigError("lora_dropout: PPO turns every dropout off (the rollout and the update must give the same "
                              "log-probs), so it must be 0")
        defaults = {f.name: f.default for f in dataclasses.fields(cls)}
        for name, switch in (("kl_target", "adaptive_kl"), ("kl_horizon", "adaptive_kl"), ("reward_norm_samples", "normalize_reward")):
            if not values[switch] and values[name] != defaults[name]:
                raise ConfigError(f"{name}: read only when {switch} is on; turn {switch} on or leave {name} at {defaults[name]}")
        if values["per_device_train_batch_size"] % values["num_mini_batches"]:
            raise ConfigError(f"num_mini_batches: {values['num_mini_batches']} does not divide per_device_train_batch_size "
                              f"({values['per_device_train_batch_size']}); choose a divisor")


METRICS = (
    Metric("score", "Reward-model score (raw)", higher_is_better=True),
    Metric("kl", "KL to reference (nats per response)", higher_is_better=False),
    Metric("entropy", "Entropy per token"),
    Metric("policy_loss", "Policy loss"),
    Metric("value_loss", "Value loss", higher_is_better=False),
    Metric("clipfrac", "Clip fraction"),
    Metric("approx_kl", "Approx. KL old → new"),
    Metric("response_length", "Response length (tokens)"),
    Metric("explained_variance", "Explained variance", higher_is_better=True),
    Metric("kl_coef", "KL coefficient"),
)

RECIPE = register_online(
    method="ppo",
    label="PPO policy",
    description="A policy trained with PPO (ours) to raise a reward model's score on the snapshot's prompts, held close to its start by a KL penalty.",
    config_class=PPOConfig,
    module=__name__,
    metrics=METRICS,
)


def build(ctx: TrainContext, *, device, bf16_ok: bool):
    """Policy, reference, critic and reward from a run's paths: (cfg, trainer pieces)."""
    import copy

    from training.rl import models as M

    cfg, tokenizer, policy, dtype = policy_load(ctx, PPOConfig, device=device, bf16_ok=bf16_ok)
    rm_net, rm_tokenizer = reward_model_load(reward_model_specs(ctx)[0], dtype=dtype)
    if cfg.critic_init == "reward_model" and not M.same_vocabulary(tokenizer, rm_tokenizer):
        raise ValueError("critic_init: the reward model's tokenizer differs from the policy's, so it cannot give per-token values; use critic_init=policy")
    if cfg.critic_init == "reward_model" and rm_net.config.num_labels != 1:
        # A value is one number per token; a multi-objective reward model's head gives one per attribute.
        raise ValueError(f"critic_init: the reward model has {rm_net.config.num_labels} heads (one per attribute), "
                         "so it cannot give per-token values; use critic_init=policy")
    weights = attribute_weights(ctx)  # the multi-objective heads' combination (None: the model's defaults)
    heads = [name for name, _ in rm_net.named_children() if name in M.HEADS]
    lora = dict(r=cfg.lora_r, alpha=cfg.lora_alpha, dropout=cfg.lora_dropout)
    if ctx.use_lora:
        ref = None  # the policy with its adapter off
        policy = M.with_lora(policy, task_type="CAUSAL_LM", **lora)
        if cfg.critic_init == "reward_model":
            # One network for both: the critic is the reward model plus its own adapter and head copy,
            # the reward is the same network with the adapter off.
            critic_net = M.with_lora(rm_net, task_type="SEQ_CLS", modules_to_save=heads, **lora)
            reward = M.RewardModel(critic_net, rm_tokenizer, adapter_off=True, batch_size=cfg.per_device_eval_batch_size, max_length=cfg.max_length,
                                   weights=weights)
        else:
            base_critic = M.critic_from_policy(ctx.base_model_path, pad_token_id=tokenizer.pad_token_id, dtype=dtype)
            critic_net = M.with_lora(base_critic, task_type="SEQ_CLS", modules_to_save=[n for n, _ in base_critic.named_children() if n in M.HEADS], **lora)
            reward = M.RewardModel(rm_net.requires_grad_(False).eval(), rm_tokenizer, batch_size=cfg.per_device_eval_batch_size, max_length=cfg.max_length,
                                   weights=weights)
    else:
        ref = copy.deepcopy(policy).requires_grad_(False).eval().to(device)
        if cfg.critic_init == "reward_model":
            critic_net = copy.deepcopy(rm_net)
        else:
            critic_net = M.critic_from_policy(ctx.base_model_path, pad_token_id=tokenizer.pad_token_id, dtype=dtype)
        reward = M.RewardModel(rm_net.requires_grad_(False).eval(), rm_tokenizer, batch_size=cfg.per_device_eval_batch_size, max_length=cfg.max_length,
                                   weights=weights)
    for net in (policy, critic_net):
        no_dropout(net)
    rm_net.to(device)
    policy.to(device)
    critic = M.ValueModel(critic_net).to(device)
    return cfg, dict(policy=policy, ref_policy=ref, critic=critic, reward=reward, tokenizer=tokenizer), rm_tokenizer


def train(ctx: TrainContext) -> dict:
    from training.rl.ppo import PPOTrainer

    run = start(ctx, PPOConfig)
    cfg, pieces, rm_tokenizer = build(ctx, device=run.device, bf16_ok=run.bf16_ok)
    trainable = sum(p.numel() for m in (pieces["policy"], pieces["critic"]) for p in m.parameters() if p.requires_grad)
    ctx.progress.say(f"PPO, {'LoRA' if ctx.use_lora else 'full'}: {trainable / 1e6:.2f}M trainable parameters (policy + critic), "
                     f"critic from the {cfg.critic_init.replace('_', ' ')}, lr {cfg.learning_rate:g}, bf16 {cfg.bf16}")
    ctx.progress.check()
    trainer = PPOTrainer(cfg=cfg, prompts=run.prompts, progress=ctx.progress, checkpoint_dir=ctx.checkpoint_dir, device=run.device, **pieces)
    # Our trainer reads none of the Trainer-only flags (RLConfig.UNUSED) and turns every dropout off (no_dropout).
    effective = effective_settings({
        "bf16": bool(cfg.bf16 and run.device.type == "cuda"), "gradient_checkpointing": bool(cfg.gradient_checkpointing),
        "use_liger_kernel": False, "torch_compile": False, "padding_free": False, "group_by_length": False,
        "learning_rate": cfg.learning_rate, **lora_effective(pieces["policy"]), **({"lora_dropout": 0.0} if ctx.use_lora else {}),
        "critic_init": cfg.critic_init,
    })
    ctx.progress.say("trainer uses " + ", ".join(f"{k} {v}" for k, v in effective.items()))
    result = trainer.train()
    trainer.save_checkpoint()  # a worker lost while evaluating or saving resumes here, not from an older update
    trainer.check()

    if run.processes.is_main:  # saved before evaluating: an evaluation that fails must not cost the policy
        out = ctx.out_dir
        out.mkdir(parents=True, exist_ok=True)
        pieces["policy"].save_pretrained(str(out), safe_serialization=True)
        pieces["tokenizer"].save_pretrained(str(out))
        pieces["critic"].net.save_pretrained(str(out / "critic"), safe_serialization=True)
        rm_tokenizer.save_pretrained(str(out / "critic"))
        ctx.progress.say(f"saved the {'adapter' if ctx.use_lora else 'policy'} (and the critic in critic/) to {out}")
        ctx.progress.say("evaluating on the held-out prompts")
    test, samples = evaluated(ctx.progress, lambda: trainer.evaluate(run.held_out[: cfg.eval_prompts] if run.processes.is_main else [],
                                                                      samples=cfg.sample_prompts))
    trainer.check()
    run.processes.barrier()
    history = result.pop("history")
    result.update(test=test, samples=samples, final=history[-1] if history else None, resolved_config=dataclasses.asdict(cfg),
                  effective=effective)
    return result
