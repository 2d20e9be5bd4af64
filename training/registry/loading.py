"""A registered reward model in memory: loaded once per worker process and kept in a small cache
keyed by the artifact and its path, so a loop of calls does not reload weights. Used by the score
endpoint, "least certain first", evaluation jobs and the judge. torch inside the functions only."""
from __future__ import annotations

import threading
from collections import OrderedDict

from training.core.paths import artifact_path
from training.registry.models import ModelArtifact

CACHE_SIZE = 2
_cache: OrderedDict[tuple, tuple] = OrderedDict()
_lock = threading.Lock()


class LoadError(ValueError):
    """A registered model that cannot be loaded as asked."""


def _load(model: ModelArtifact):
    import torch
    from transformers import AutoModelForSequenceClassification

    from training.core.heads import heads_attach, num_labels
    from training.recipes.common import load_tokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    folder = artifact_path(model.path)
    if model.is_adapter:
        from peft import PeftModel

        if model.base_model is None:
            raise LoadError(f"{model.name}: an adapter without a base model cannot be loaded")
        base = AutoModelForSequenceClassification.from_pretrained(
            str(artifact_path(model.base_model.path)), num_labels=num_labels(folder), use_safetensors=True
        )
        net = PeftModel.from_pretrained(base, str(folder), use_safetensors=True)
    else:
        net = AutoModelForSequenceClassification.from_pretrained(str(folder), num_labels=num_labels(folder), use_safetensors=True)
    # One head per attribute for a multi-objective model (arbiter_heads.json): the scorer combines them.
    heads_attach(net, folder)
    tokenizer = load_tokenizer(folder)
    # The head reads the last non-pad token; it must agree with the tokenizer on which that is.
    net.config.pad_token_id = tokenizer.pad_token_id
    if hasattr(net, "get_base_model"):
        net.get_base_model().config.pad_token_id = tokenizer.pad_token_id
    return net.to(device).eval(), tokenizer


def reward_model_loaded(model: ModelArtifact):
    """(network, tokenizer) of a registered reward model, from the cache when it is there."""
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
