"""Tiny real judges for the judge tests (tests/tiny_models.py underneath).

`constant_judge_lm` is a 2-layer Llama whose attention and MLP outputs are zeroed, so the hidden
state at the last position is the embedding of the last token (the chat template's
"<|assistant|>"), whatever the item says: its next-token distribution is fixed, and we set it
through the embeddings. That makes a judge whose answer probabilities we know exactly — for
instance one that always answers "A", whatever is shown first."""
from __future__ import annotations

import math
from pathlib import Path

from training.models import ModelArtifact

WORDS = (
    "a b 1 2 3 4 5 6 7 8 9 10 11 conversation response which is better answer with single letter or number "
    "compare the responses on scale from means much they are equally good rate worst best question answer to "
    "thanks please whatever stop you careful annotator of ai assistant follow project instructions principles"
)


def judge_tokenizer():
    from tests.tiny_models import train_tokenizer

    return train_tokenizer([WORDS])


def _save(model, tokenizer, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)


def constant_judge_lm(folder: Path, logits: dict[str, float]) -> Path:
    """A causal LM whose next token after the prompt has these logits (others: 0), always."""
    import torch

    from tests.tiny_models import tiny_causal_lm

    tokenizer = judge_tokenizer()
    model = tiny_causal_lm(tokenizer, hidden=32, layers=2)
    hidden = model.config.hidden_size
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        emb = model.model.embed_tokens.weight
        emb[:, 0] = 0.0
        last = tokenizer.convert_tokens_to_ids("<|assistant|>")
        emb[last] = 0.0
        emb[last, 0] = 1.0  # normalised: sqrt(hidden) along dim 0
        for word, logit in logits.items():
            emb[tokenizer.convert_tokens_to_ids(word.lower()), 0] = logit / math.sqrt(hidden)
    _save(model, tokenizer, folder)
    return folder


def register(folder: Path, name: str, kind: str) -> ModelArtifact:
    from django.conf import settings

    rel = folder.relative_to(Path(settings.ARTIFACT_ROOT))
    return ModelArtifact.objects.create(name=name, kind=kind, source=ModelArtifact.Source.LOCAL, path=str(rel))


def tiny_reward(folder: Path, seed: int = 0) -> Path:
    from tests.tiny_models import tiny_reward_model

    tokenizer = judge_tokenizer()
    _save(tiny_reward_model(tokenizer, seed=seed), tokenizer, folder)
    return folder
