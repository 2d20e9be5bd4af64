"""Answers from registered policies: K samples per prompt, batched, with the sampling settings
recorded beside each answer. Used by policy evaluation and by generation batches sent to raters.

A policy is a full causal LM folder or a LoRA adapter on its base model. torch, transformers and
peft are imported inside the functions, so the web process can import this module (the prompt
readers below are plain Python) without loading them."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from training.models import ModelArtifact
from training.paths import artifact_path

POLICY_KINDS = (ModelArtifact.Kind.CAUSAL_LM, ModelArtifact.Kind.POLICY)


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
        return self

    def as_dict(self) -> dict:
        return asdict(self)


# --- prompts -----------------------------------------------------------------------------------

def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise GenerationError(f"{path}:{n}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict) or "prompt" not in row:
                raise GenerationError(f"{path}:{n}: field 'prompt' is missing")
            rows.append(row)
    return rows


def prompts_from_snapshot(*, folder: Path | str, split: str = "test", limit: int | None = None) -> list:
    """The distinct prompts of a snapshot split, in file order: the `prompts` format when the
    snapshot has it, else the prompts of the preference pairs."""
    folder = Path(folder)
    for fmt in ("prompts", "preference"):
        path = folder / fmt / f"{split}.jsonl"
        if path.is_file() and path.stat().st_size:
            break
    else:
        raise GenerationError(f"{folder}: no prompts/{split}.jsonl or preference/{split}.jsonl with prompts in it")
    out, seen = [], set()
    for row in _read_jsonl(path):
        key = json.dumps(row["prompt"], sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(row["prompt"])
        if limit and len(out) >= limit:
            break
    return out


def prompts_from_project(*, project, limit: int | None = None) -> list:
    """The prompts of a project's items (a prompt set: items with or without candidates); gold
    items are checks for raters, not prompts."""
    items = project.items.filter(is_gold=False).order_by("id").values_list("prompt", flat=True)
    out, seen = [], set()
    for prompt in items.iterator():
        key = json.dumps(prompt, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(prompt)
        if limit and len(out) >= limit:
            break
    if not out:
        raise GenerationError(f"project {project.slug}: no items to take prompts from")
    return out


# --- models ------------------------------------------------------------------------------------

def policy_validate(model: ModelArtifact) -> ModelArtifact:
    if model.kind not in POLICY_KINDS:
        raise GenerationError(f"{model.name} is a {model.get_kind_display().lower()}, not a language model that can answer")
    if model.is_adapter and model.base_model_id is None:
        raise GenerationError(f"{model.name}: a LoRA adapter without a base model cannot be loaded")
    return model


def device_pick() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def policy_load(model: ModelArtifact, *, device: str | None = None):
    """(network, tokenizer) ready to generate: a full model, or an adapter on its base."""
    import torch
    from transformers import AutoModelForCausalLM

    from training.recipes.common import load_tokenizer

    policy_validate(model)
    device = device or device_pick()
    dtype = torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    folder = artifact_path(model.path)
    if model.is_adapter:
        from peft import PeftModel

        base = AutoModelForCausalLM.from_pretrained(str(artifact_path(model.base_model.path)), dtype=dtype, use_safetensors=True)
        net = PeftModel.from_pretrained(base, str(folder), use_safetensors=True)
    else:
        net = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype, use_safetensors=True)
    tokenizer = load_tokenizer(folder if (folder / "tokenizer_config.json").is_file() else artifact_path(model.base_model.path))
    return net.to(device).eval(), tokenizer


def _encode_prompts(tokenizer, prompts: list):
    from training.chat import render_prompt, special_tokens

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


def response_logprobs(*, net, prompt_ids: list[int], response_ids: list[int], temperature: float = 1.0) -> list[float]:
    """Log-probabilities of each response token under `net`, with the logits divided by the
    temperature the answer was sampled at (the same distribution the sampler drew from)."""
    import torch

    if not response_ids:
        return []
    device = next(net.parameters()).device
    ids = torch.tensor([prompt_ids + response_ids], device=device)
    with torch.no_grad():
        logits = net(input_ids=ids).logits[0, len(prompt_ids) - 1 : -1].float()
    logits = logits / (temperature if temperature > 0 else 1.0)
    logp = torch.log_softmax(logits, dim=-1)
    return logp.gather(1, torch.tensor(response_ids, device=device)[:, None])[:, 0].cpu().tolist()
