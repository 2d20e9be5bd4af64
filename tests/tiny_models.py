"""Tiny models for tests that train: a tokenizer trained in milliseconds on the test's own text,
and Llama models with a hidden size of 32 built from a config (random weights, CPU, no download).

    tokenizer = train_tokenizer(texts)              # WordLevel, with pad/eos/unk and a chat template
    lm = tiny_causal_lm(tokenizer)                  # for DPO, KTO, SFT
    rm = tiny_reward_model(tokenizer)               # one-logit sequence classifier, for RewardTrainer
    texts = snapshot_texts(folder)                  # every string in a snapshot's JSONL files

Shared by the dataset tests and the training tests.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Iterator

SPECIALS = ["<pad>", "<eos>", "<unk>", "<|user|>", "<|assistant|>", "<|system|>"]
# A minimal chat template. The prompt part is a prefix of prompt + completion, which TRL's
# prompt-completion tokenisation relies on.
CHAT_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'assistant' %}<|assistant|> {{ m['content'] }} <eos> "
    "{% elif m['role'] == 'system' %}<|system|> {{ m['content'] }} "
    "{% else %}<|user|> {{ m['content'] }} {% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)


def snapshot_texts(folder: Path | str) -> Iterator[str]:
    """Every string in every JSONL file of a snapshot folder (prompts, responses, messages)."""
    for path in sorted(Path(folder).rglob("*.jsonl")):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                yield from _strings(json.loads(line))


def train_tokenizer(texts: Iterable[str], *, vocab_size: int = 2000):
    """A word-level tokenizer trained on `texts`, wrapped for transformers/TRL."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, special_tokens=SPECIALS)
    tok.train_from_iterator(list(texts) + SPECIALS, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _config(tokenizer, *, hidden: int, layers: int, **extra):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
        **extra,
    )


def tiny_causal_lm(tokenizer, *, hidden: int = 32, layers: int = 2, seed: int = 0):
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    return LlamaForCausalLM(_config(tokenizer, hidden=hidden, layers=layers))


def tiny_reward_model(tokenizer, *, hidden: int = 32, layers: int = 2, seed: int = 0):
    import torch
    from transformers import LlamaForSequenceClassification

    torch.manual_seed(seed)
    return LlamaForSequenceClassification(_config(tokenizer, hidden=hidden, layers=layers, num_labels=1))


def cpu_args(config_class, folder: Path | str, **overrides):
    """A TRL config for a few CPU steps: no bf16, no checkpointing, no reporting, no saving."""
    defaults = dict(
        output_dir=str(folder), max_steps=2, per_device_train_batch_size=2, learning_rate=1e-3,
        bf16=False, fp16=False, gradient_checkpointing=False, report_to=[], use_cpu=True,
        logging_steps=1, save_strategy="no", dataloader_num_workers=0, seed=0,
    )
    defaults.update(overrides)
    return config_class(**defaults)
