"""Scores from a registered reward model: given a prompt and responses, one reward per response
(for AI feedback and for picking the pairs most worth a human's time).

Loaded models stay in a small in-process cache keyed by the artifact and its path, so a loop of
calls does not reload weights. torch is imported inside the functions only."""
from __future__ import annotations

import threading
from collections import OrderedDict

from training.models import ModelArtifact
from training.paths import artifact_path

CACHE_SIZE = 2
_cache: OrderedDict[tuple, tuple] = OrderedDict()
_lock = threading.Lock()


class ScoringError(ValueError):
    pass


def _load(model: ModelArtifact):
    import torch
    from transformers import AutoModelForSequenceClassification

    from training.recipes.common import load_tokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    folder = artifact_path(model.path)
    if model.is_adapter:
        from peft import PeftModel

        if model.base_model is None:
            raise ScoringError(f"{model.name}: an adapter without a base model cannot be loaded")
        base = AutoModelForSequenceClassification.from_pretrained(
            str(artifact_path(model.base_model.path)), num_labels=1, use_safetensors=True
        )
        net = PeftModel.from_pretrained(base, str(folder), use_safetensors=True)
    else:
        net = AutoModelForSequenceClassification.from_pretrained(str(folder), num_labels=1, use_safetensors=True)
    tokenizer = load_tokenizer(folder)
    # The head reads the last non-pad token; it must agree with the tokenizer on which that is.
    net.config.pad_token_id = tokenizer.pad_token_id
    if hasattr(net, "get_base_model"):
        net.get_base_model().config.pad_token_id = tokenizer.pad_token_id
    return net.to(device).eval(), tokenizer


def _loaded(model: ModelArtifact):
    key = (model.pk, model.path, model.is_adapter)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    loaded = _load(model)
    with _lock:
        _cache[key] = loaded
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return loaded


def cache_clear() -> None:
    with _lock:
        _cache.clear()


def _texts(tokenizer, prompt, responses) -> list:
    """Each response after its prompt, as the RewardTrainer saw pairs: a chat rendered with the
    template, or text with the eos token appended."""
    from training.recipes.common import is_conversational

    out = []
    for response in responses:
        if is_conversational(prompt):
            reply = response if isinstance(response, list) else [{"role": "assistant", "content": str(response)}]
            out.append(tokenizer.apply_chat_template(prompt + reply, tokenize=False))
        else:
            text = prompt + (response if isinstance(response, str) else str(response))
            eos = tokenizer.eos_token  # encoders (MiniLM) have none: nothing to append, as in training
            out.append(text + eos if eos and not text.endswith(eos) else text)
    return out


def score(*, model: ModelArtifact, prompt, responses: list, batch_size: int = 16) -> list[float]:
    """Rewards for responses to one prompt (text, or a list of chat messages), higher is better."""
    import torch

    from training.recipes.common import is_conversational

    if model.kind != ModelArtifact.Kind.REWARD_MODEL:
        raise ScoringError(f"{model.name} is a {model.get_kind_display().lower()}, not a reward model")
    if not responses:
        return []
    net, tokenizer = _loaded(model)
    device = next(net.parameters()).device
    texts = _texts(tokenizer, prompt, responses)
    # As in training: the chat template carries its own special tokens, plain text gets the tokenizer's.
    special = not is_conversational(prompt)
    tokenizer.padding_side = "right"
    scores: list[float] = []
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(texts[start : start + batch_size], padding=True, return_tensors="pt", add_special_tokens=special)
        with torch.no_grad():
            logits = net(input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device)).logits
        scores += logits[:, 0].float().cpu().tolist()
    return scores
