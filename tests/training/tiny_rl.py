"""Tiny pieces for the online-RL tests: a reward model whose preference is known exactly, a policy,
prompt snapshots and a TrainContext, all on the CPU in seconds.

The reward model is a real LlamaForSequenceClassification (loaded and scored like any registered
one) whose weights are set by hand so that its score rises with the share of one word ("thanks")
in prompt + response:
- every token embeds with the same norm: the marked word along dimension 0, all others along 2;
- attention has zero queries and keys, so it averages the values over the (causal) prefix, and
  the values read dimension 0: at the last token the attention output is the share of the word;
- the output projection writes that share to dimension 1; the MLP is zeroed;
- the head reads dimension 1 after the final RMSNorm: 4s / sqrt(1 + s^2), increasing in the share s.
"""
from __future__ import annotations

import json
from pathlib import Path

MARKED = "thanks"
WORDS = ("question about apples rivers engines planets music gardens clocks bridges oceans forests "
         "the a it is was we you they can will thanks please stop go").split()
TOPICS = "apples rivers engines planets music gardens clocks bridges oceans forests".split()
PROMPTS = [f"{lead} question about {topic}" for lead in ("a", "the", "we", "you") for topic in TOPICS]  # 40, for training
HELD_OUT = [f"it is about {topic}" for topic in TOPICS]


def tokenizer():
    from tests.tiny_models import train_tokenizer

    return train_tokenizer([" ".join(WORDS)])


def save_policy(folder: Path, tok, *, seed: int = 0, init: float = 0.3) -> Path:
    """A random 2-layer Llama. Weights drawn wider than the usual 0.02 (`init`): with tiny tied
    embeddings the layers barely move the logits, and a LoRA adapter on them could not either."""
    import torch
    from transformers import LlamaForCausalLM

    from tests.tiny_models import _config

    torch.manual_seed(seed)
    model = LlamaForCausalLM(_config(tok, hidden=32, layers=2, initializer_range=init))
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return folder


def token_reward_model(tokenizer, *, word: str = MARKED, hidden: int = 16):
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden, num_hidden_layers=1,
        num_attention_heads=1, num_key_value_heads=1, max_position_embeddings=512, num_labels=1,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None,
    )
    model = LlamaForSequenceClassification(config)
    marked = tokenizer.convert_tokens_to_ids(word)
    scale = float(hidden) ** 0.5  # RMSNorm of a vector with one entry `scale` gives that vector back
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        for norm in (model.model.layers[0].input_layernorm, model.model.layers[0].post_attention_layernorm, model.model.norm):
            norm.weight.fill_(1.0)
        emb = model.model.embed_tokens.weight
        emb[:, 2] = scale
        emb[marked, 2] = 0.0
        emb[marked, 0] = scale
        attn = model.model.layers[0].self_attn
        attn.v_proj.weight[0, 0] = 1.0 / scale  # value = 1 for the marked word, 0 otherwise
        attn.o_proj.weight[1, 0] = scale
        model.score.weight[0, 1] = 1.0
    return model


def save_reward_model(folder: Path, tokenizer, **kwargs) -> Path:
    model = token_reward_model(tokenizer, **kwargs)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def write_prompt_snapshot(folder: Path, train: list, test: list) -> Path:
    (folder / "prompts").mkdir(parents=True, exist_ok=True)
    for split, rows in (("train", train), ("test", test)):
        with open(folder / "prompts" / f"{split}.jsonl", "w") as fh:
            for prompt in rows:
                fh.write(json.dumps({"prompt": prompt}) + "\n")
    return folder


class FakeProgress:
    """The Progress protocol of training/recipes/catalog.py, recording what a run reports.
    `stop_after`: check() raises once that many steps were reported (a killed worker)."""

    class Stopped(Exception):
        pass

    def __init__(self, stop_after: int | None = None):
        self.lines, self.points, self.step, self.total = [], [], 0, None
        self.stop_after = stop_after

    def say(self, line: str) -> None:
        self.lines.append(line)

    def metrics(self, point: dict) -> None:
        self.points.append(dict(point))

    def steps(self, *, step: int, total: int | None = None) -> None:
        self.step, self.total = step, total

    def check(self) -> None:
        if self.stop_after is not None and self.step >= self.stop_after:
            raise FakeProgress.Stopped(f"stopped at step {self.step}")

    def should_stop(self) -> bool:
        return self.stop_after is not None and self.step >= self.stop_after


def context(tmp: Path, *, method: str, config: dict, policy: Path, reward: Path, snapshot: Path, use_lora: bool, progress, **extra):
    from training.recipes.catalog import TrainContext

    return TrainContext(
        run_id=1, method=method, config=config, use_lora=use_lora, snapshot_dir=snapshot, base_model_path=policy,
        base_model_name="tiny", out_dir=tmp / "out", checkpoint_dir=tmp / "checkpoints", work_dir=tmp / "work",
        progress=progress, reward_model_path=reward, extra=extra,
    )
