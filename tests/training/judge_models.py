"""Tiny real judges for the judge tests (tests/tiny_models.py underneath).

`bigram_judge_lm` is a 2-layer Llama whose attention and MLP outputs are zeroed, so the hidden
state at each position is the embedding of that position's token, whatever the item says: the
next-token distribution depends on the last token only, and we set it per last token (one-hot
embeddings, an untied output layer). After the chat template's "<|assistant|>" it is the judge's
answer; after an answer token it says whether the answer goes on ("1" -> "0" for a judge that
means 10) or ends (<eos>). `constant_judge_lm` is the special case with one distribution after
"<|assistant|>" and the same (uniform) one after every other token: a judge whose answer
probabilities we know exactly, for instance one that always answers "A", whatever is shown first.

The tokenizer splits numbers into digits, as SmolLM2's does, so "10" is the two tokens "1" "0"."""
from __future__ import annotations

import math
from pathlib import Path

from training.models import ModelArtifact

WORDS = (
    "a b 1 2 3 4 5 6 7 8 9 0 conversation response which is better answer with single letter or number "
    "compare the responses on scale from means much they are equally good rate worst best question answer to "
    "thanks please whatever stop you careful annotator of ai assistant follow project instructions principles "
    "nothing else and"
)


def judge_tokenizer():
    from tokenizers import pre_tokenizers

    from tests.tiny_models import train_tokenizer

    tokenizer = train_tokenizer([WORDS])
    tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)])
    return tokenizer


def _save(model, tokenizer, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)


def bigram_judge_lm(folder: Path, table: dict[str, dict[str, float]], *, default: dict[str, float] | None = None) -> Path:
    """A causal LM whose next-token logits after token `prev` are table[prev] (others: 0), and
    `default` after any token the table does not name. Keys are words ("a", "10" is not one: "1",
    "0") or special tokens ("<|assistant|>", "<eos>")."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = judge_tokenizer()
    hidden = 32
    assert len(table) < hidden, "one embedding dimension per named token, and one for the rest"
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None, tie_word_embeddings=False, rms_norm_eps=1e-8,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    scale = math.sqrt(hidden)  # RMSNorm turns a one-hot embedding into sqrt(hidden) along it
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.norm.weight.fill_(1.0)
        emb, head = model.model.embed_tokens.weight, model.lm_head.weight
        emb.zero_()
        emb[:, 0] = 1.0  # every token not in the table: dimension 0, the default distribution
        head.zero_()
        for word, logit in (default or {}).items():
            head[_id(tokenizer, word), 0] = logit / scale
        for dim, (prev, logits) in enumerate(table.items(), start=1):
            row = _id(tokenizer, prev)
            emb[row] = 0.0
            emb[row, dim] = 1.0
            for word, logit in logits.items():
                head[_id(tokenizer, word), dim] = logit / scale
    _save(model, tokenizer, folder)
    return folder


def _id(tokenizer, word: str) -> int:
    token = word if word.startswith("<") else word.lower()
    i = tokenizer.convert_tokens_to_ids(token)
    assert i is not None and i != tokenizer.unk_token_id, f"{word!r} is not a token of the judge tokenizer"
    return i


def constant_judge_lm(folder: Path, logits: dict[str, float]) -> Path:
    """A causal LM whose next token after the prompt has these logits (others: 0), always; after
    any other token every token is equally likely (so the end marker weighs the same after every
    one-token answer)."""
    return bigram_judge_lm(folder, {"<|assistant|>": logits})


def register(folder: Path, name: str, kind: str) -> ModelArtifact:
    from django.conf import settings

    rel = folder.relative_to(Path(settings.ARTIFACT_ROOT))
    return ModelArtifact.objects.create(name=name, kind=kind, source=ModelArtifact.Source.LOCAL, path=str(rel))


def tiny_reward(folder: Path, seed: int = 0) -> Path:
    from tests.tiny_models import tiny_reward_model

    tokenizer = judge_tokenizer()
    _save(tiny_reward_model(tokenizer, seed=seed), tokenizer, folder)
    return folder


class RuleJudge:
    """Builds an LMJudge whose network is a rule instead of weights: after the chat template's
    "<|assistant|>" it spells `answer(context_text)` token by token and then ends the turn
    (<eos>); anything else it finds equally likely. LMJudge's own code (chat template, option
    tokens, the end marker, the scoring of each option as a complete answer) runs unchanged on top:
    only the next-token distribution is faked, and it may depend on what the item shows where,
    which the weights of a 2-layer stand-in cannot easily do."""

    def __new__(cls, answer):
        import torch

        from training.judge.judges import LMJudge

        tokenizer = judge_tokenizer()

        class RuleNet(torch.nn.Module):
            def forward(self, input_ids, attention_mask=None, logits_to_keep=0, **_):
                start_id = tokenizer.convert_tokens_to_ids("<|assistant|>")
                eos = tokenizer.eos_token_id
                batch, width = input_ids.shape
                logits = torch.zeros(batch, width, len(tokenizer))
                for r in range(batch):
                    row = input_ids[r].tolist()
                    real = int(attention_mask[r].sum()) if attention_mask is not None else width
                    opened = max(i for i in range(real) if row[i] == start_id)
                    said = tokenizer(answer(tokenizer.decode(row[:opened])), add_special_tokens=False)["input_ids"] + [eos]
                    for p in range(opened, real):
                        so_far = row[opened + 1 : p + 1]
                        if len(so_far) < len(said) and said[: len(so_far)] == so_far:
                            logits[r, p, said[len(so_far)]] = 10.0
                from types import SimpleNamespace

                return SimpleNamespace(logits=logits[:, -logits_to_keep:] if logits_to_keep else logits)

        judge = LMJudge.__new__(LMJudge)
        judge._ready(net=RuleNet(), tokenizer=tokenizer, device="cpu", max_length=2048)
        return judge


def shown(context: str) -> tuple[str, str]:
    """(what the judge was shown first, second) in a pair or Likert question, from the decoded chat."""
    user = context.split("<|user|>")[-1]
    a = user.index("response a")
    b = user.index("response b", a)
    ends = [i for i in (user.find("which", b), user.find("compare", b)) if i >= 0]
    return user[a + len("response a") : b], user[b + len("response b") : min(ends) if ends else len(user)]


def scale_points(context: str) -> int | None:
    """N of "on a scale from 1 to N" (a Likert question), else None (a pair question)."""
    marker = "scale from 1 to "
    if marker not in context:
        return None
    return int(context.split(marker, 1)[1].split(":")[0].split(" ")[0])


def prefers_second(context: str) -> str:
    """A judge that always prefers the response shown second, whatever it says."""
    points = scale_points(context)
    return "B" if points is None else str(points)


def prefers_thanks(context: str) -> str:
    """A judge that prefers the response that says "thanks" more often, wherever it is shown."""
    first, second = shown(context)
    first_better = first.count("thanks") > second.count("thanks")
    points = scale_points(context)
    if points is None:
        return "A" if first_better else "B"
    return "1" if first_better else str(points)
