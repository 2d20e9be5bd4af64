"""Answers from a loaded causal LM and their log-probabilities: K samples per prompt, batched, with
the sampling settings recorded beside each answer. Used by policy evaluation (jobs and the end of
online runs) and by generation batches sent to raters.

Also the one place that turns a run's sampling settings into a transformers GenerationConfig
(generation_config) and samples with it and nothing else (sample): PPO's rollouts, evaluation,
generation batches and the GRPO/RLOO generation through TRL all go through these two. Left alone,
transformers fills every field of the config handed to generate() that is None from the model's
own generation_config (repetition_penalty, min_p, typical_p, no_repeat_ngram_size, top_k=50,
suppress_tokens, forced_eos_token_id...): the samples would come from a processed distribution
while their log-probs are recomputed from the raw one. The only processors left are temperature
and top_p, and response_logprobs applies both the same way.

No Django here, and torch is imported inside the functions: the web process imports Sampling
and GenerationError (through training/loop/generation.py) without loading torch, and bench scripts
without a database use the same code."""
from __future__ import annotations

from contextlib import contextmanager
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


# Every GenerationConfig field that adds a logits processor (or changes the search), at the value
# that adds none. Explicit rather than None: None is what transformers fills from the model. The
# fields whose only "off" is None (min_p, top_h, bad_words_ids, suppress_tokens, forced_*_token_id,
# sequence_bias, exponential_decay_length_penalty, watermarking_config) stay None and are kept
# from the model's values by sample() (and model_config_replaced), which hand generate() no model config to fill them from.
NEUTRAL = {
    "num_beams": 1, "top_k": 0, "typical_p": 1.0, "epsilon_cutoff": 0.0, "eta_cutoff": 0.0, "repetition_penalty": 1.0,
    "encoder_repetition_penalty": 1.0, "no_repeat_ngram_size": 0, "encoder_no_repeat_ngram_size": 0, "min_length": 0,
    "renormalize_logits": False, "remove_invalid_values": False,
}  # min_new_tokens stays None: set, even to 0, it becomes a min_length processor on the prompt's length


def generation_config(sampling: Sampling, *, pad_token_id: int | None, eos_token_id: int | None):
    """The GenerationConfig of `sampling`, from the run's settings alone: temperature and top_p (or
    greedy at temperature 0), max_new_tokens, the tokenizer's pad and eos, every other processor
    off. Use it through sample(), which keeps the model's own generation_config out."""
    from transformers import GenerationConfig

    greedy = sampling.temperature == 0
    return GenerationConfig(
        **NEUTRAL, do_sample=not greedy, max_new_tokens=sampling.max_new_tokens,
        temperature=None if greedy else sampling.temperature, top_p=None if greedy else sampling.top_p,
        pad_token_id=pad_token_id, eos_token_id=eos_token_id,
    )


@contextmanager
def model_config_replaced(net, config):
    """While generating, every transformers model inside `net` (a PEFT or DDP wrapper holds one)
    carries `config` as its own generation_config, so generate() fills the fields left None from
    `config` itself (then transformers' global defaults), never from the checkpoint's file.
    Restored afterwards: a saved model keeps the generation_config it shipped with."""
    from transformers import PreTrainedModel

    models = [m for m in net.modules() if isinstance(m, PreTrainedModel) and getattr(m, "generation_config", None) is not None]
    saved = [m.generation_config for m in models]
    for m in models:
        m.generation_config = config
    try:
        yield
    finally:
        for m, original in zip(models, saved):
            m.generation_config = original


def sample(net, *, input_ids, attention_mask, config):
    """net.generate() with `config` (generation_config()) and nothing from the model's own."""
    with model_config_replaced(net, config):
        return net.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=config)


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
    config = generation_config(sampling, pad_token_id=pad, eos_token_id=eos)
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
            gen = sample(net, input_ids=input_ids, attention_mask=mask, config=config)
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


def response_logprobs(*, net, answers: list[dict], temperature: float = 1.0, top_p: float = 1.0, batch_size: int = 8) -> list[float]:
    """The log-probability of each answer's response under `net` (the sum over its tokens) in the
    distribution the sampler drew from: logits divided by the temperature (greedy answers:
    temperature 1) and, with top_p < 1, renormalised over the nucleus the sampler kept at each
    step (transformers' own TopPLogitsWarper, so the same tokens), exactly as generation_config()
    samples. `answers`: dicts with prompt_ids and response_ids, as generate() returns them.
    Batched, right-padded: a causal LM's earlier positions never see the padding, so each sum is
    what the answer alone would give."""
    import torch

    if not answers:
        return []
    device = next(net.parameters()).device
    scale = temperature if temperature > 0 else 1.0
    nucleus = temperature > 0 and top_p < 1.0  # greedy answers come from no nucleus
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
            logits = net(input_ids=ids, attention_mask=mask, use_cache=False).logits[:, :-1]
            rows = logits[targets].float() / scale  # (response tokens, vocab): only these are needed
            tokens = ids[:, 1:][targets]
            if nucleus:
                rows = _nucleus_only(rows, tokens, top_p)
            picked = rows.gather(-1, tokens[:, None])[:, 0] - torch.logsumexp(rows, -1)
            sums = torch.zeros(len(chunk), device=device).index_add_(0, targets.nonzero()[:, 0], picked)
        out += sums.cpu().tolist()
    return out


def _nucleus_only(logits, tokens, top_p: float):
    """`logits` with every token outside the top-p nucleus at -inf, as the sampler saw them."""
    import torch
    from transformers.generation.logits_process import TopPLogitsWarper

    kept = torch.isfinite(TopPLogitsWarper(top_p=top_p)(None, logits))
    # The sampled token was inside the sampler's nucleus. A recompute that differs in the last bits
    # (batching, kv cache, bf16) can put a token at the edge just outside: keep it rather than
    # give the answer a log-probability of -inf.
    kept[torch.arange(len(tokens), device=tokens.device), tokens] = True
    return logits.masked_fill(~kept, float("-inf"))
