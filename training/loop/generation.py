"""Registered policies and the prompts they answer: loading a policy (a full causal LM folder or a
LoRA adapter on its base model) and reading prompts from a snapshot or a project. Sampling,
GenerationError and generate() live in training/rl/sampling.py (no Django) and are re-exported here.

torch, transformers and peft are imported inside the functions, so the web process can import
this module (the prompt readers below are plain Python) without loading them."""
from __future__ import annotations

import json
from pathlib import Path

from training.registry.models import ModelArtifact
from training.core.paths import artifact_path
from training.rl.sampling import GenerationError, Sampling, generate  # noqa: F401  (re-exported; their home has no Django)

POLICY_KINDS = (ModelArtifact.Kind.CAUSAL_LM, ModelArtifact.Kind.POLICY)


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

def with_article(noun: str) -> str:
    """ "an encoder", "a reward model": the kind names read as English."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def policy_validate(model: ModelArtifact, *, field: str = "policy") -> ModelArtifact:
    """Refuse a model that cannot answer. Messages start with `field: ` (the API turns that into
    the field of its 400)."""
    if model.kind not in POLICY_KINDS:
        kind = with_article(model.get_kind_display().lower())
        raise GenerationError(f"{field}: {model.name} is {kind}, not a language model that can answer")
    if model.is_adapter and model.base_model_id is None:
        raise GenerationError(f"{field}: {model.name} is a LoRA adapter without a base model; it cannot be loaded")
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
