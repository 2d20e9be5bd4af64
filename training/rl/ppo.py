"""PPO for RLHF, ours: the maths, then the loop. Read it top to bottom.

It follows the known-good recipe of InstructGPT (Ouyang et al. 2022) as reproduced in "The N
implementation details of RLHF with PPO" (Huang et al. 2023):

    for each update:
        rollout    sample a response to each prompt of a batch from the policy (temperature T)
        score      the reward model scores the whole response (normalised with the mean/std of
                   the reference's samples, measured once at the start); a response that never
                   ends gets a penalty
        reward     per token: -kl_coef * KL(policy || reference), and the score added at the
                   last token of the response
        advantage  GAE(gamma, lambda) from the critic's values, whitened over the batch
        update     several PPO epochs over minibatches: clipped policy loss + vf_coef x clipped
                   value loss; the KL coefficient adapts towards a target (or stays fixed)

Choices (and why):
- The critic is a separate network initialised from the reward model (InstructGPT, Huang et al.):
  it starts out knowing what scores well, and the value loss never pulls on the policy's weights
  (a head on the policy shares its trunk, and value gradients then disturb the policy). With LoRA
  the critic is the reward model's network with its own adapter, and the reward is that network
  with the adapter off; the reference is the policy with its adapter off. Two copies of weights
  in all, whatever the method needs four networks for.
- Temperature divides the logits both when sampling and when computing log-probs, so the
  importance ratio compares the distribution the tokens were actually drawn from.
- The episode ends with the response: no bootstrapping after the last token (gae() can bootstrap
  when asked, which the tests check by hand).

The maths functions take tensors and return tensors; tests/training/test_ppo_math.py checks each
against numbers computed by hand. The loop (PPOTrainer) needs only a policy, a critic, a reward
function and prompts: training/recipes/ppo.py builds those from a run, bench/rl_throughput.py
from random weights.
"""
from __future__ import annotations

import dataclasses
import os
import random
import shutil
import time
from contextlib import nullcontext
from pathlib import Path

import torch

# =========================================================================== the maths


def _all_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum over the processes of a multi-process run (whitening and metrics see the whole batch)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        x = x.clone()
        torch.distributed.all_reduce(x)
    return x


def masked_mean(x: torch.Tensor, mask: torch.Tensor, *, across_processes: bool = False) -> torch.Tensor:
    total, count = (x * mask).sum(), mask.sum()
    if across_processes:
        total, count = _all_sum(total), _all_sum(count)
    return total / count.clamp_min(1)


def masked_var(x: torch.Tensor, mask: torch.Tensor, *, unbiased: bool = True, across_processes: bool = False) -> torch.Tensor:
    mean = masked_mean(x, mask, across_processes=across_processes)
    var = masked_mean((x - mean) ** 2, mask, across_processes=across_processes)
    if unbiased:
        n = mask.sum()
        n = _all_sum(n) if across_processes else n
        var = var * n / (n - 1).clamp_min(1)
    return var


def whiten(x: torch.Tensor, mask: torch.Tensor, *, shift_mean: bool = True, across_processes: bool = False) -> torch.Tensor:
    """(x - mean) / std over the unmasked entries; masked entries become 0. shift_mean=False keeps
    the mean (used for rewards, whose sign carries meaning)."""
    mean = masked_mean(x, mask, across_processes=across_processes)
    var = masked_var(x, mask, across_processes=across_processes)
    out = (x - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        out = out + mean
    return out * mask


def kl_per_token(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: str = "k1") -> torch.Tensor:
    """Per-token estimate of KL(policy || reference) from tokens sampled by the policy
    (Schulman, "Approximating KL divergence"). k1 = log p - log q: unbiased, can be negative per
    token. k3 = (q/p - 1) - log(q/p): unbiased too, never negative, lower variance."""
    log_ratio = logprobs - ref_logprobs
    if estimator == "k1":
        return log_ratio
    if estimator == "k3":
        return torch.expm1(-log_ratio) + log_ratio
    raise ValueError(f"kl_estimator: {estimator!r} is not one of k1, k3")


def token_rewards(scores: torch.Tensor, kl: torch.Tensor, mask: torch.Tensor, kl_coef: float) -> torch.Tensor:
    """-kl_coef * KL at every response token, plus the sequence's score at its last token."""
    rewards = -kl_coef * kl * mask
    last = (mask.sum(1).long() - 1).clamp_min(0)
    rewards[torch.arange(len(scores), device=scores.device), last] += scores
    return rewards


def gae(rewards, values, mask, *, gamma: float, lam: float, last_values: torch.Tensor | None = None):
    """Generalised advantage estimation over right-padded sequences.

        delta_t = r_t + gamma * V_{t+1} - V_t,    A_t = delta_t + gamma * lambda * A_{t+1}

    After a sequence's last token V_{t+1} is `last_values` (bootstrapping: the value of the state
    the rollout was cut at) or 0 (terminal). Returns (advantages, returns = A + V), 0 where masked."""
    batch, length = rewards.shape
    mask = mask.to(rewards.dtype)
    rewards, values = rewards * mask, values * mask
    last = torch.zeros(batch, dtype=rewards.dtype, device=rewards.device) if last_values is None else last_values.to(rewards.dtype)
    advantages = torch.zeros_like(rewards)
    running = torch.zeros(batch, dtype=rewards.dtype, device=rewards.device)
    zeros = torch.zeros_like(running)
    for t in reversed(range(length)):
        mask_next = mask[:, t + 1] if t + 1 < length else zeros
        value_next = values[:, t + 1] if t + 1 < length else zeros
        # At the last real token (mask 1 -> 0) the next value is the bootstrap value.
        value_next = value_next * mask_next + last * (mask[:, t] - mask_next)
        delta = rewards[:, t] + gamma * value_next - values[:, t]
        running = (delta + gamma * lam * mask_next * running) * mask[:, t]
        advantages[:, t] = running
    return advantages, (advantages + values) * mask


def policy_loss(logprobs, old_logprobs, advantages, mask, clip: float):
    """Clipped surrogate: mean over tokens of max(-A r, -A clip(r, 1-e, 1+e)), r = p/p_old.
    Also the share of tokens where the clip decided, and the approximate KL(old || new)."""
    log_ratio = logprobs - old_logprobs
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip, 1.0 + clip)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    clipfrac = masked_mean((clipped > unclipped).float(), mask)
    approx_kl = 0.5 * masked_mean(log_ratio**2, mask)
    return loss, clipfrac.detach(), approx_kl.detach()


def value_loss(values, old_values, returns, mask, clip: float):
    """Clipped value loss: 0.5 * mean of max((V - R)^2, (V_old + clip(V - V_old, -e, e) - R)^2)."""
    clipped_values = old_values + torch.clamp(values - old_values, -clip, clip)
    unclipped = (values - returns) ** 2
    clipped = (clipped_values - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(unclipped, clipped), mask)
    clipfrac = masked_mean((clipped > unclipped).float(), mask)
    return loss, clipfrac.detach()


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    probs = torch.softmax(logits, dim=-1)
    return torch.logsumexp(logits, dim=-1) - (probs * logits).sum(-1)


def logprobs_of(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[token] without materialising the whole log-softmax."""
    picked = torch.gather(logits, -1, tokens.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)


def explained_variance(values, returns, mask) -> torch.Tensor:
    var_returns = masked_var(returns, mask, unbiased=False)
    return 1.0 - masked_var(returns - values, mask, unbiased=False) / var_returns.clamp_min(1e-8)


def truncate_after_eos(responses: torch.Tensor, eos_id: int):
    """Mask of each response up to and including its first eos; and whether it had one."""
    is_eos = responses == eos_id
    ended = is_eos.any(1)
    length = responses.shape[1]
    first = torch.where(ended, is_eos.int().argmax(1), torch.full_like(ended, length - 1, dtype=torch.long))
    mask = torch.arange(length, device=responses.device)[None, :] <= first[:, None]
    return mask, ended


class KLController:
    """Adaptive KL coefficient (Ziegler et al. 2019): moves the coefficient so that the measured
    KL approaches `target`, by at most 20% of the error per `horizon` samples. target=None: fixed."""

    def __init__(self, value: float, target: float | None = None, horizon: int = 10000):
        self.value, self.target, self.horizon = value, target, horizon

    def update(self, current_kl: float, n_samples: int) -> None:
        if self.target is None:
            return
        error = max(-0.2, min(0.2, current_kl / self.target - 1.0))
        self.value *= 1.0 + error * n_samples / self.horizon

    def state_dict(self) -> dict:
        return {"value": self.value, "target": self.target, "horizon": self.horizon}

    def load_state_dict(self, state: dict) -> None:
        self.value, self.target, self.horizon = state["value"], state["target"], state["horizon"]


# =========================================================================== the loop


@dataclasses.dataclass
class Batch:
    """One rollout: prompt+response token ids and everything the update needs, per token."""

    prompts: list
    responses: list[str]
    input_ids: torch.Tensor  # (B, P + R): left-padded prompt, right-padded response
    attention_mask: torch.Tensor
    prompt_length: int  # P
    response_mask: torch.Tensor  # (B, R) response tokens up to and including the first eos
    logprobs: torch.Tensor  # (B, R) policy log-probs at sampling time (the "old" policy)
    ref_logprobs: torch.Tensor
    values: torch.Tensor
    scores: torch.Tensor  # (B,) raw reward-model scores
    ended: torch.Tensor  # (B,) the response has an eos
    advantages: torch.Tensor | None = None
    returns: torch.Tensor | None = None
    kl: torch.Tensor | None = None


def _unwrap(model):
    return model.module if hasattr(model, "module") else model


def _positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Left padding shifts where a prompt starts: positions count real tokens only (as generate does)."""
    return (attention_mask.long().cumsum(1) - 1).clamp_min(0)


class PPOTrainer:
    """The PPO loop. `policy` (causal LM, peft or not), `critic` (training.rl.models.ValueModel),
    `reward` (callable: prompts, response texts -> scores), `ref_policy` (None with LoRA: the
    policy with its adapter off). `progress` follows training.recipes.catalog.Progress."""

    def __init__(self, *, cfg, policy, critic, reward, tokenizer, prompts: list, progress, checkpoint_dir: Path | str,
                 ref_policy=None, device: torch.device | str = "cpu"):
        self.cfg, self.tokenizer, self.reward, self.progress = cfg, tokenizer, reward, progress
        self.device = torch.device(device)
        self.prompts = prompts
        self.checkpoint_dir = Path(checkpoint_dir)
        self.ref_policy = ref_policy
        self.distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        self.rank = torch.distributed.get_rank() if self.distributed else 0
        self.world = torch.distributed.get_world_size() if self.distributed else 1
        self.kl_ctl = KLController(cfg.kl_coef, cfg.kl_target if cfg.adaptive_kl else None, cfg.kl_horizon)
        self.reward_mean, self.reward_std = 0.0, 1.0
        self.step = 0
        self.timings = {"generation": 0.0, "scoring": 0.0, "forward": 0.0, "update": 0.0}
        self.tokens = {"rollout": 0, "train": 0}

        self.batch_per_rank = cfg.per_device_train_batch_size
        self.updates_per_epoch = len(prompts) // (self.batch_per_rank * self.world)
        if self.updates_per_epoch == 0:
            raise ValueError(f"{len(prompts)} prompts: a rollout needs at least {self.batch_per_rank * self.world} "
                             f"(per_device_train_batch_size x processes)")
        if self.batch_per_rank % cfg.num_mini_batches:
            raise ValueError("per_device_train_batch_size must be a multiple of num_mini_batches")
        self.total_updates = cfg.max_steps if cfg.max_steps > 0 else max(1, int(self.updates_per_epoch * cfg.num_train_epochs))

        if cfg.gradient_checkpointing:
            policy.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            if hasattr(policy, "enable_input_require_grads"):
                policy.enable_input_require_grads()
        self.policy, self.critic = policy, critic
        if self.distributed:
            ddp = torch.nn.parallel.DistributedDataParallel
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.policy, self.critic = ddp(policy, device_ids=ids), ddp(critic, device_ids=ids)
        params = [p for m in (policy, critic) for p in m.parameters() if p.requires_grad]
        fused = self.device.type == "cuda"
        self.optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay, fused=fused or None)
        from transformers import get_scheduler

        optimizer_steps = self.total_updates * cfg.ppo_epochs * cfg.num_mini_batches
        warmup = cfg.warmup_steps if cfg.warmup_steps >= 1 else cfg.warmup_steps * optimizer_steps
        self.scheduler = get_scheduler(cfg.lr_scheduler_type, self.optimizer, num_warmup_steps=int(warmup), num_training_steps=optimizer_steps)

    # ------------------------------------------------------------------ helpers

    def _autocast(self):
        if self.cfg.bf16 and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()

    def _reference(self):
        """The reference's forward: its own copy, or the policy with the LoRA adapter off."""
        if self.ref_policy is not None:
            return self.ref_policy, nullcontext()
        return _unwrap(self.policy), _unwrap(self.policy).disable_adapter()

    def _logits(self, model, input_ids, attention_mask, prompt_length: int) -> torch.Tensor:
        """Logits that predict each response token, divided by the sampling temperature."""
        response_length = input_ids.shape[1] - prompt_length
        with self._autocast():
            out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=_positions(attention_mask),
                        logits_to_keep=response_length + 1, use_cache=False)
        return out.logits[:, :-1].float() / self.cfg.temperature

    def _values(self, critic, input_ids, attention_mask, prompt_length: int) -> torch.Tensor:
        """V(s_t) for each response token: the critic at the position before that token."""
        with self._autocast():
            values = critic(input_ids, attention_mask, _positions(attention_mask))
        return values[:, prompt_length - 1 : -1].float()

    def _prompt_batch(self, step: int) -> list:
        """The prompts of update `step` for this process: a fresh permutation per pass, from the seed."""
        epoch, index = divmod(step, self.updates_per_epoch)
        order = torch.randperm(len(self.prompts), generator=torch.Generator().manual_seed(self.cfg.seed + epoch)).tolist()
        start = (index * self.world + self.rank) * self.batch_per_rank
        return [self.prompts[i] for i in order[start : start + self.batch_per_rank]]

    def _encode_prompts(self, prompts: list):
        from training.core.chat import render_prompt, special_tokens

        tok = self.tokenizer
        tok.padding_side, tok.truncation_side = "left", "left"
        texts = [render_prompt(tok, p) for p in prompts]
        special = special_tokens(tok, prompts[0])
        enc = tok(texts, padding=True, truncation=True, max_length=self.cfg.max_prompt_length, return_tensors="pt", add_special_tokens=special)
        return enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)

    @torch.no_grad()
    def generate(self, prompts: list, *, reference: bool = False):
        """Sample one response per prompt: (input_ids, attention_mask, P, response mask, ended, texts)."""
        from training.rl.sampling import Sampling, generation_config, sample

        tok = self.tokenizer
        ids, mask = self._encode_prompts(prompts)
        # Plain sampling at the temperature and nothing else (training/rl/sampling.py keeps the
        # model's generation_config out): _logits below divides by the same temperature, so the
        # log-probs are those of the distribution the tokens were drawn from.
        gen = generation_config(Sampling(temperature=self.cfg.temperature, max_new_tokens=self.cfg.max_new_tokens),
                                pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        model, ctx = self._reference() if reference else (_unwrap(self.policy), nullcontext())
        was_training = model.training
        model.eval()
        with ctx, self._autocast():
            out = sample(model, input_ids=ids, attention_mask=mask, config=gen)
        model.train(was_training)
        prompt_length = ids.shape[1]
        responses = out[:, prompt_length:]
        if responses.shape[1] < self.cfg.max_new_tokens:  # every sequence ended early
            pad = torch.full((len(prompts), self.cfg.max_new_tokens - responses.shape[1]), tok.pad_token_id, device=self.device)
            responses = torch.cat([responses, pad], 1)
        response_mask, ended = truncate_after_eos(responses, tok.eos_token_id)
        responses = torch.where(response_mask, responses, torch.full_like(responses, tok.pad_token_id))
        texts = [tok.decode(r[m], skip_special_tokens=True) for r, m in zip(responses, response_mask)]
        input_ids = torch.cat([ids, responses], 1)
        attention_mask = torch.cat([mask, response_mask.long()], 1)
        return input_ids, attention_mask, prompt_length, response_mask, ended, texts

    def score(self, prompts: list, texts: list[str], ended: torch.Tensor) -> torch.Tensor:
        """Normalised reward-model score, with the penalty for a response that never ended."""
        raw = self.reward(prompts, texts).to(self.device).float()
        normalised = (raw - self.reward_mean) / self.reward_std
        return normalised - self.cfg.missing_eos_penalty * (~ended).float(), raw

    # ------------------------------------------------------------------ the phases

    @torch.no_grad()
    def normalise_rewards(self) -> None:
        """Mean 0, std 1 over the reference's samples at the start (Huang et al., detail 3)."""
        if not self.cfg.normalize_reward:
            return
        wanted = max(1, self.cfg.reward_norm_samples // self.world)
        order = torch.randperm(len(self.prompts), generator=torch.Generator().manual_seed(self.cfg.seed - 1)).tolist()
        mine = [self.prompts[order[(i * self.world + self.rank) % len(order)]] for i in range(wanted)]
        scores = []
        for start in range(0, len(mine), self.batch_per_rank):
            prompts = mine[start : start + self.batch_per_rank]
            *_, texts = self.generate(prompts, reference=True)
            scores.append(self.reward(prompts, texts).to(self.device).float())
        scores = torch.cat(scores)
        ones = torch.ones_like(scores)
        self.reward_mean = float(masked_mean(scores, ones, across_processes=True))
        self.reward_std = float(masked_var(scores, ones, across_processes=True).sqrt().clamp_min(1e-6))
        self.say(f"reward normalisation from {len(scores) * self.world} reference samples: mean {self.reward_mean:.4g}, std {self.reward_std:.4g}")

    @torch.no_grad()
    def rollout(self, prompts: list) -> Batch:
        cfg = self.cfg
        started = time.perf_counter()
        input_ids, attention_mask, P, response_mask, ended, texts = self.generate(prompts)
        self.timings["generation"] += time.perf_counter() - started

        started = time.perf_counter()
        scores, raw = self.score(prompts, texts, ended)
        self.timings["scoring"] += time.perf_counter() - started

        started = time.perf_counter()
        chunks = {"logprobs": [], "ref": [], "values": []}
        micro = max(1, self.batch_per_rank // (cfg.num_mini_batches * cfg.gradient_accumulation_steps))
        policy = _unwrap(self.policy)
        for s in range(0, len(prompts), micro):
            ids, mask = input_ids[s : s + micro], attention_mask[s : s + micro]
            tokens = ids[:, P:]
            chunks["logprobs"].append(logprobs_of(self._logits(policy, ids, mask, P), tokens))
            ref_model, adapter_off = self._reference()
            with adapter_off:
                chunks["ref"].append(logprobs_of(self._logits(ref_model, ids, mask, P), tokens))
            chunks["values"].append(self._values(_unwrap(self.critic), ids, mask, P))
        rmask = response_mask.float()
        logprobs = torch.cat(chunks["logprobs"]) * rmask
        ref_logprobs = torch.cat(chunks["ref"]) * rmask
        values = torch.cat(chunks["values"]) * rmask

        kl = kl_per_token(logprobs, ref_logprobs, cfg.kl_estimator) * rmask
        rewards = token_rewards(scores, kl, rmask, self.kl_ctl.value)
        if cfg.whiten_rewards:
            rewards = whiten(rewards, rmask, shift_mean=False, across_processes=True)
        advantages, returns = gae(rewards, values, rmask, gamma=cfg.gamma, lam=cfg.lam)
        advantages = whiten(advantages, rmask, across_processes=True)
        # Log-probs of policy and reference and the critic's values at sampling time.
        self.timings["forward"] += time.perf_counter() - started
        self.tokens["rollout"] += int(response_mask.sum())
        return Batch(prompts, texts, input_ids, attention_mask, P, response_mask, logprobs, ref_logprobs, values, raw, ended,
                     advantages, returns, kl)

    def update(self, batch: Batch) -> dict:
        """PPO epochs over shuffled minibatches; returns the means of the losses and statistics."""
        cfg = self.cfg
        started = time.perf_counter()
        self.policy.train()
        self.critic.train()
        n = len(batch.prompts)
        mini = n // cfg.num_mini_batches
        micro = max(1, mini // cfg.gradient_accumulation_steps)
        P = batch.prompt_length
        stats = {k: [] for k in ("policy_loss", "value_loss", "clipfrac", "value_clipfrac", "approx_kl", "entropy")}
        for _ in range(cfg.ppo_epochs):
            order = torch.randperm(n).tolist()
            for m in range(cfg.num_mini_batches):
                mb = order[m * mini : (m + 1) * mini]
                self.optimizer.zero_grad(set_to_none=True)
                for s in range(0, len(mb), micro):
                    idx = torch.tensor(mb[s : s + micro], device=self.device)
                    ids, amask = batch.input_ids[idx], batch.attention_mask[idx]
                    rmask = batch.response_mask[idx].float()
                    logits = self._logits(self.policy, ids, amask, P)
                    logprobs = logprobs_of(logits, ids[:, P:])
                    values = self._values(self.critic, ids, amask, P)
                    pg, clipfrac, approx_kl = policy_loss(logprobs, batch.logprobs[idx], batch.advantages[idx], rmask, cfg.cliprange)
                    vf, vf_clipfrac = value_loss(values, batch.values[idx], batch.returns[idx], rmask, cfg.cliprange_value)
                    loss = (pg + cfg.vf_coef * vf) * len(idx) / len(mb)
                    loss.backward()
                    with torch.no_grad():
                        entropy = masked_mean(entropy_from_logits(logits), rmask)
                    for key, value in (("policy_loss", pg), ("value_loss", vf), ("clipfrac", clipfrac), ("value_clipfrac", vf_clipfrac),
                                       ("approx_kl", approx_kl), ("entropy", entropy)):
                        stats[key].append(float(value.detach()))
                    self.tokens["train"] += int(amask.sum())
                params = [p for g in self.optimizer.param_groups for p in g["params"]]
                grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                self.optimizer.step()
                self.scheduler.step()
        self.timings["update"] += time.perf_counter() - started
        out = {k: sum(v) / len(v) for k, v in stats.items()}
        out["grad_norm"] = float(grad_norm)
        return out

    # ------------------------------------------------------------------ reporting, checkpoints

    def say(self, line: str) -> None:
        if self.rank == 0:
            self.progress.say(line)

    def _mean(self, value: float) -> float:
        if not self.distributed:
            return float(value)
        return float(_all_sum(torch.tensor(float(value), device=self.device)) / self.world)

    def metrics(self, batch: Batch, stats: dict) -> dict:
        rmask = batch.response_mask.float()
        ones = torch.ones_like(batch.scores)
        point = {
            "step": self.step,
            "score": float(masked_mean(batch.scores, ones, across_processes=True)),
            "kl": float(masked_mean(batch.kl.sum(1), ones, across_processes=True)),
            "response_length": float(masked_mean(rmask.sum(1), ones, across_processes=True)),
            "ended": float(masked_mean(batch.ended.float(), ones, across_processes=True)),
            "explained_variance": self._mean(explained_variance(batch.values, batch.returns, rmask)),
            "kl_coef": self.kl_ctl.value,
            "learning_rate": self.scheduler.get_last_lr()[0],
        }
        point.update({k: self._mean(v) for k, v in stats.items()})
        point["loss"] = point["policy_loss"] + self.cfg.vf_coef * point["value_loss"]
        return point

    def _trainable(self, model) -> dict:
        return {n: p.detach().cpu() for n, p in _unwrap(model).named_parameters() if p.requires_grad}

    def save_checkpoint(self) -> Path | None:
        """Everything to continue as if never stopped: trainable weights of policy and critic,
        optimizer and schedule, KL controller, reward normalisation, every process's RNG, the step.
        Written to a temporary folder and renamed, so a killed save never looks complete."""
        rng = {"python": random.getstate(), "torch": torch.get_rng_state(),
               "cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None}
        try:
            import numpy as np

            rng["numpy"] = np.random.get_state()
        except ImportError:
            pass
        rngs = [None] * self.world
        if self.distributed:
            torch.distributed.all_gather_object(rngs, rng)
        else:
            rngs = [rng]
        final = self.checkpoint_dir / f"checkpoint-{self.step}"
        if self.rank == 0:
            tmp = self.checkpoint_dir / f".checkpoint-{self.step}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            torch.save({
                "step": self.step,
                "policy": self._trainable(self.policy),
                "critic": self._trainable(self.critic),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "kl_ctl": self.kl_ctl.state_dict(),
                "reward_norm": (self.reward_mean, self.reward_std),
                "rng": rngs,
                "config": dataclasses.asdict(self.cfg),
            }, tmp / "state.pt")
            # The policy as a loadable model beside the state (an adapter with LoRA): a kept checkpoint is a
            # policy a user may register and send to raters (training/runs/checkpoints.py).
            _unwrap(self.policy).save_pretrained(str(tmp / "policy"), safe_serialization=True)
            self.tokenizer.save_pretrained(str(tmp / "policy"))
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            kept = sorted(checkpoints(self.checkpoint_dir), reverse=True)
            for _, old in kept[getattr(self.cfg, "keep_checkpoints", self.cfg.save_total_limit) :]:
                shutil.rmtree(old, ignore_errors=True)
            self.say(f"checkpoint saved at update {self.step}")
        if self.distributed:
            torch.distributed.barrier()
        return final

    def load_checkpoint(self, path: Path) -> None:
        state = torch.load(path / "state.pt", map_location="cpu", weights_only=False)
        for model, key in ((self.policy, "policy"), (self.critic, "critic")):
            missing = set(state[key]) - {n for n, _ in _unwrap(model).named_parameters()}
            if missing:
                raise ValueError(f"{path}: {key} weights {sorted(missing)[:3]} do not fit this model")
            _unwrap(model).load_state_dict(state[key], strict=False)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.kl_ctl.load_state_dict(state["kl_ctl"])
        self.reward_mean, self.reward_std = state["reward_norm"]
        self.step = state["step"]
        rng = state["rng"][self.rank] if self.rank < len(state["rng"]) else state["rng"][0]
        random.setstate(rng["python"])
        torch.set_rng_state(rng["torch"])
        if rng.get("cuda") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)
        if "numpy" in rng:
            import numpy as np

            np.random.set_state(rng["numpy"])

    # ------------------------------------------------------------------ the run

    def check(self) -> None:
        """progress.check() on every process, and a stop anywhere stops all at the same update
        (a process that stopped alone would leave the others waiting in a collective)."""
        error = None
        try:
            self.progress.check()
        except BaseException as exc:  # noqa: BLE001 - re-raised below, on this process
            error = exc
        if self.distributed:
            flag = torch.tensor([0.0 if error is None else 1.0], device=self.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            if flag.item() and error is None:
                raise StoppedElsewhere("another process of this run stopped")
        if error is not None:
            raise error

    def train(self) -> dict:
        cfg = self.cfg
        resume = latest_checkpoint(self.checkpoint_dir)
        if resume is not None:
            self.load_checkpoint(resume)
            self.say(f"resumed from {resume.name} (update {self.step} of {self.total_updates})")
        else:
            torch.manual_seed(cfg.seed)
            random.seed(cfg.seed)
            self.normalise_rewards()
        resumed_from = self.step if resume is not None else None
        started = time.perf_counter()
        self.progress.steps(step=self.step, total=self.total_updates)
        history = []
        while self.step < self.total_updates:
            self.check()
            batch = self.rollout(self._prompt_batch(self.step))
            stats = self.update(batch)
            self.step += 1
            point = self.metrics(batch, stats)
            self.kl_ctl.update(point["kl"], len(batch.prompts) * self.world)
            history.append(point)
            self.progress.steps(step=self.step, total=self.total_updates)
            if self.rank == 0:
                if self.step % cfg.logging_steps == 0 or self.step == self.total_updates or self.step == 1:
                    self.progress.metrics(point)
                    self.say(f"update {self.step}/{self.total_updates} score={point['score']:.4g} kl={point['kl']:.4g} "
                             f"entropy={point['entropy']:.4g} len={point['response_length']:.1f} clipfrac={point['clipfrac']:.3f}")
            if self.step % cfg.save_steps == 0 and self.step < self.total_updates:
                self.save_checkpoint()
        return {"global_step": self.step, "resumed_from_step": resumed_from, "train_seconds": round(time.perf_counter() - started, 2),
                "history": history, "timings": dict(self.timings), "tokens": dict(self.tokens),
                "reward_normalisation": {"mean": self.reward_mean, "std": self.reward_std}, "kl_coef": self.kl_ctl.value}

    def evaluate(self, prompts: list, *, samples: int = 4) -> tuple[dict, list]:
        """The policy against its reference on held-out prompts (training/rl/comparison.py, as an
        evaluation job): the figures and the first `samples` pairs side by side."""
        from training.rl.comparison import compare
        from training.rl.sampling import Sampling

        figures = compare(policy=_unwrap(self.policy), reference=self.ref_policy, tokenizer=self.tokenizer, reward=self.reward,
                          prompts=prompts, sampling=Sampling(temperature=self.cfg.temperature, max_new_tokens=self.cfg.max_new_tokens),
                          batch_size=self.cfg.per_device_eval_batch_size, samples_kept=samples)
        return figures, figures.pop("samples")


class StoppedElsewhere(Exception):
    """Another process of a multi-process run stopped (cancelled, or lost its run)."""


def checkpoints(folder: Path) -> list[tuple[int, Path]]:
    if not folder.is_dir():
        return []
    return [(int(p.name.split("-")[-1]), p) for p in folder.iterdir()
            if p.name.startswith("checkpoint-") and p.name.split("-")[-1].isdigit() and (p / "state.pt").exists()]


def latest_checkpoint(folder: Path) -> Path | None:
    found = checkpoints(Path(folder))
    return max(found)[1] if found else None


__all__ = ["PPOTrainer", "KLController", "gae", "policy_loss", "value_loss", "kl_per_token", "whiten", "token_rewards",
           "truncate_after_eos", "masked_mean", "masked_var", "entropy_from_logits", "logprobs_of", "explained_variance"]
