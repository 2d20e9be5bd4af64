"""A policy against its reference on held-out prompts, judged by a reward model.

Each prompt is answered once by each model (sampling at `temperature`); the reward model scores
both answers; the policy wins a prompt when its answer scores higher (a tie counts half). Reported:
the win rate with n and a 95% Wilson interval, mean scores, mean lengths, and the KL of the policy
to the reference per response (the mean over the policy's answers of log p - log q summed over
their tokens, at the sampling temperature), plus a few samples side by side.

Any two causal LMs that share a tokenizer can be compared; with a LoRA policy the reference is
the same network with its adapter off (reference=None). No Django here.
"""
from __future__ import annotations

import math
from contextlib import nullcontext

import torch

from training.chat import render_prompt, special_tokens


def wilson(wins: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% interval of a proportion (Wilson score): sensible at 0, 1 and small n."""
    if n == 0:
        return (0.0, 1.0)
    p = wins / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def _adapter_off(model):
    return model.disable_adapter() if hasattr(model, "disable_adapter") else nullcontext()


@torch.no_grad()
def _answer(model, tokenizer, prompts, *, max_new_tokens: int, temperature: float, device, off: bool):
    from transformers import GenerationConfig

    tokenizer.padding_side, tokenizer.truncation_side = "left", "left"
    enc = tokenizer([render_prompt(tokenizer, p) for p in prompts], padding=True, return_tensors="pt",
                    add_special_tokens=special_tokens(tokenizer, prompts[0])).to(device)
    gen = GenerationConfig(do_sample=True, temperature=temperature, top_k=0, top_p=1.0, max_new_tokens=max_new_tokens,
                           pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    was = model.training
    model.eval()
    with _adapter_off(model) if off else nullcontext():
        out = model.generate(**enc, generation_config=gen)
    model.train(was)
    P = enc["input_ids"].shape[1]
    responses = out[:, P:]
    is_eos = responses == tokenizer.eos_token_id
    first = torch.where(is_eos.any(1), is_eos.int().argmax(1), torch.full_like(is_eos[:, 0], responses.shape[1] - 1, dtype=torch.long))
    rmask = torch.arange(responses.shape[1], device=device)[None, :] <= first[:, None]
    texts = [tokenizer.decode(r[m], skip_special_tokens=True) for r, m in zip(responses, rmask)]
    ids = torch.cat([enc["input_ids"], responses], 1)
    mask = torch.cat([enc["attention_mask"], rmask.long()], 1)
    return ids, mask, P, rmask, texts


@torch.no_grad()
def _logprob(model, ids, mask, P: int, rmask, temperature: float, *, off: bool):
    positions = (mask.cumsum(1) - 1).clamp_min(0)
    with _adapter_off(model) if off else nullcontext():
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False).logits[:, P - 1 : -1].float() / temperature
    tokens = ids[:, P:]
    picked = torch.gather(logits, -1, tokens.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, -1)
    return (picked * rmask).sum(1)


def compare(*, policy, tokenizer, reward, prompts: list, reference=None, max_new_tokens: int = 128, temperature: float = 0.7,
            batch_size: int = 16, device="cpu", samples: int = 4) -> tuple[dict, list]:
    """Policy against reference (None: the policy with its adapter off) on `prompts`.
    `reward`: callable (prompts, response texts) -> scores (training.rl.models.RewardModel)."""
    if not prompts:
        return {"test_prompts": 0, "note": "no held-out prompts"}, []
    ref_model, ref_off = (policy, True) if reference is None else (reference, False)
    if reference is None and not hasattr(policy, "disable_adapter"):
        raise ValueError("a full (not LoRA) policy needs its reference model to be compared with")
    wins, kls, rows = 0.0, [], []
    pol_scores, ref_scores, pol_len, ref_len = [], [], [], []
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start : start + batch_size]
        ids, mask, P, rmask, pol_texts = _answer(policy, tokenizer, chunk, max_new_tokens=max_new_tokens, temperature=temperature, device=device, off=False)
        kl = _logprob(policy, ids, mask, P, rmask, temperature, off=False) - _logprob(ref_model, ids, mask, P, rmask, temperature, off=ref_off)
        _, _, _, ref_rmask, ref_texts = _answer(ref_model, tokenizer, chunk, max_new_tokens=max_new_tokens, temperature=temperature, device=device, off=ref_off)
        pol = reward(chunk, pol_texts).float().cpu()
        ref = reward(chunk, ref_texts).float().cpu()
        wins += float((pol > ref).sum()) + 0.5 * float((pol == ref).sum())
        kls += kl.float().cpu().tolist()
        pol_scores += pol.tolist()
        ref_scores += ref.tolist()
        pol_len += rmask.sum(1).cpu().tolist()
        ref_len += ref_rmask.sum(1).cpu().tolist()
        rows += [{"prompt": p, "policy": a, "reference": b, "policy_score": float(x), "reference_score": float(y)}
                 for p, a, b, x, y in zip(chunk, pol_texts, ref_texts, pol, ref)]
    n = len(pol_scores)
    low, high = wilson(wins, n)
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    return {
        "test_prompts": n,
        "win_rate_vs_reference": wins / n,
        "win_rate_ci95": [low, high],
        "score_policy_mean": mean(pol_scores),
        "score_reference_mean": mean(ref_scores),
        "kl_to_reference_mean": mean(kls),
        "response_length_mean": mean(pol_len),
        "reference_length_mean": mean(ref_len),
    }, rows[:samples]
