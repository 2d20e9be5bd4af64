"""Answers from a loaded causal LM and their log-probabilities: K samples per prompt, batched, with
the sampling settings recorded beside each answer. Used by policy evaluation (jobs and the end of
online runs) and by generation batches sent to raters.

No Django here, and torch is imported inside the functions: the web process imports Sampling
and GenerationError (through training/loop/generation.py) without loading torch, and bench scripts
without a database use the same code."""
from __future__ import annotations

from dataclasses import asdict, dataclass


MAX_SEED = 2**63 - 1


class GenerationError(ValueError):
    """A bad request: the message names the field, file or model."""


@dataclass(frozen=True)
class Sampling:
    """How one model samples. temperature 0 means greedy (then every sample is the same)."""

    temperature: float = 0.7
    top_p: float = 1.0
    max_new_tokens: int = 64
    seed: int = 0

    def validate(self) -> Sampling:
        if not 0.0 <= self.temperature <= 5.0:
            raise GenerationError(f"temperature: {self.temperature} is outside 0..5")
        if not 0.0 < self.top_p <= 1.0:
            raise GenerationError(f"top_p: {self.top_p} must be in (0, 1]")
        if not 1 <= self.max_new_tokens <= 4096:
            raise GenerationError(f"max_new_tokens: {self.max_new_tokens} must be 1..4096")
        # torch.manual_seed takes seeds up to 2**64 - 1 and the worker adds the batch position.
        if not 0 <= self.seed <= MAX_SEED:
            raise GenerationError(f"seed: {self.seed} must be 0..{MAX_SEED}")
        return self

    def as_dict(self) -> dict:
        return asdict(self)


def _encode_prompts(tokenizer, prompts: list):
    from training.core.chat import render_prompt, special_tokens

    # As in training: a chat template carries its own special tokens, plain text gets the tokenizer's.
    return [tokenizer(render_prompt(tokenizer, p), add_special_tokens=special_tokens(tokenizer, p))["input_ids"] for p in prompts]


def generate(*, net, tokenizer, prompts: list, n: int = 1, sampling: Sampling = Sampling(), batch_size: int = 8,
             on_batch=None) -> list[list[dict]]:
    """n answers per prompt: [[{"text", "prompt_ids", "response_ids", "finished"}, ...], ...].

    Prompts are left-padded into batches of `batch_size` prompts × n samples each. `finished`
    says whether the answer ended with eos (False: cut at max_new_tokens). `on_batch(done)` is
    called after each batch with the number of prompts answered so far (progress, cancel)."""
    import torch

    sampling.validate()
    device = next(net.parameters()).device
    encoded = _encode_prompts(tokenizer, prompts)
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    greedy = sampling.temperature == 0
    out: list[list[dict]] = []
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start : start + batch_size]
        width = max(len(ids) for ids in chunk)
        rows = [ids for ids in chunk for _ in range(n)]
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in rows], device=device)
        mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in rows], device=device)
        # One seed per batch position: the same request gives the same answers, batch after batch.
        torch.manual_seed(sampling.seed + start)
        with torch.no_grad():
            gen = net.generate(
                input_ids=input_ids, attention_mask=mask, max_new_tokens=sampling.max_new_tokens,
                do_sample=not greedy, temperature=None if greedy else sampling.temperature,
                top_p=None if greedy else sampling.top_p, top_k=None if greedy else 0,
                pad_token_id=pad, eos_token_id=eos,
            )
        new = gen[:, width:].tolist()
        for i, ids in enumerate(chunk):
            answers = []
            for j in range(n):
                tokens = new[i * n + j]
                finished = eos in tokens
                tokens = tokens[: tokens.index(eos) + 1] if finished else tokens
                text = tokenizer.decode([t for t in tokens if t not in (eos, pad)], skip_special_tokens=True).strip()
                answers.append({"text": text, "prompt_ids": ids, "response_ids": tokens, "finished": finished})
            out.append(answers)
        if on_batch is not None:
            on_batch(len(out))
    return out


def response_logprobs(*, net, answers: list[dict], temperature: float = 1.0, batch_size: int = 8) -> list[float]:
    """The log-probability of each answer's response under `net` (the sum over its tokens), with
    the logits divided by the temperature it was sampled at (the distribution the sampler drew
    from; greedy answers: temperature 1). `answers`: dicts with prompt_ids and response_ids, as
    generate() returns them. Batched, right-padded: a causal LM's earlier positions never see the
    padding, so each sum is what the answer alone would give."""
    import torch

    if not answers:
        return []
    device = next(net.parameters()).device
    scale = temperature if temperature > 0 else 1.0
    out: list[float] = []
    for start in range(0, len(answers), batch_size):
        chunk = answers[start : start + batch_size]
        seqs = [list(a["prompt_ids"]) + list(a["response_ids"]) for a in chunk]
        width = max(len(s) for s in seqs)
        ids = torch.tensor([s + [0] * (width - len(s)) for s in seqs], device=device)
        mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs], device=device)
        # Position t predicts token t+1; only response tokens count.
        targets = torch.zeros(len(chunk), width - 1, dtype=torch.bool, device=device)
        for row, a in enumerate(chunk):
            p, r = len(a["prompt_ids"]), len(a["response_ids"])
            targets[row, p - 1 : p - 1 + r] = True
        with torch.no_grad():
            logits = net(input_ids=ids, attention_mask=mask, use_cache=False).logits[:, :-1].float() / scale
            picked = logits.gather(-1, ids[:, 1:, None])[..., 0] - torch.logsumexp(logits, -1)
        out += (picked * targets).sum(1).cpu().tolist()
    return out
