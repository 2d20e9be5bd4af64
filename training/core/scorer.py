"""The one batched reward scorer: one float per (prompt, response), higher is better.

Everything that scores with a reward model goes through `reward_scores`: the score endpoint
(training/registry/scoring.py), "least certain first" (training/selection/job.py), the policy
comparison (training/rl/comparison.py) and the online-RL reward functions (both through
training.rl.models.RewardModel). The rules, stated once here:

- A pair is rendered as the RewardTrainer saw it (chat.render_pair), and its special tokens are
  decided per row: a chat rendering carries its template's own, plain text gets the tokenizer's.
  One batch may therefore mix chat and text prompts.
- A multi-objective reward model (one head per attribute) gives one float too: the heads combined
  under the caller's weights, or the ones it was saved with (training/core/heads.py).
- A pair longer than the model's own maximum positions (or a smaller cap the caller sets) is cut
  from the LEFT, that is from the start of the prompt: the head reads the last token, so the
  response it scores is kept whole as long as it fits by itself.

No Django; torch is imported inside the functions.
"""
from __future__ import annotations

from training.core.chat import render_pair, special_tokens

# Beyond this a tokenizer's model_max_length is transformers' "no limit" sentinel, not a size.
_NO_LIMIT = 1_000_000


def max_positions(net, tokenizer=None) -> int | None:
    """The longest input the model takes: its position embeddings, else its tokenizer's limit."""
    config = getattr(net, "config", None)
    positions = getattr(config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        return positions
    limit = getattr(tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and 0 < limit < _NO_LIMIT else None


def scoring_length(net, tokenizer, cap: int | None = None) -> int | None:
    """The truncation length: the model's maximum positions, or `cap` when that is smaller."""
    limits = [n for n in (max_positions(net, tokenizer), cap) if n]
    return min(limits) if limits else None


def pair_ids(tokenizer, prompts: list, responses: list, *, max_length: int | None) -> list[list[int]]:
    """Token ids of each (prompt, response) pair, rendered and cut by the rules above (max_length
    None: not cut). Rows that share a special-token rule are tokenized in one call."""
    texts = [render_pair(tokenizer, p, r) for p, r in zip(prompts, responses)]
    special = [special_tokens(tokenizer, p) for p in prompts]
    out: list[list[int] | None] = [None] * len(texts)
    side = tokenizer.truncation_side
    tokenizer.truncation_side = "left"
    try:
        for flag in (True, False):
            rows = [i for i, s in enumerate(special) if s is flag]
            if not rows:
                continue
            cut = {"truncation": True, "max_length": max_length} if max_length else {}
            encoded = tokenizer([texts[i] for i in rows], add_special_tokens=flag, **cut)["input_ids"]
            for i, ids in zip(rows, encoded):
                out[i] = list(ids)
    finally:
        tokenizer.truncation_side = side
    return out  # type: ignore[return-value]


def head_scores(net, tokenizer, prompts: list, responses: list, *, batch_size: int = 16, cap: int | None = None):
    """Every head's output as a float tensor [pairs, heads] on the model's device (a single-head
    reward model: one column; a multi-objective one: one per attribute, training/core/heads.py)."""
    import torch

    device = next(net.parameters()).device
    ids = pair_ids(tokenizer, prompts, responses, max_length=scoring_length(net, tokenizer, cap))
    side = tokenizer.padding_side
    tokenizer.padding_side = "right"  # the head finds the last non-pad token
    scores = []
    try:
        with torch.no_grad():
            for start in range(0, len(ids), batch_size):
                enc = tokenizer.pad({"input_ids": ids[start : start + batch_size]}, padding=True, return_tensors="pt")
                logits = net(input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device)).logits
                scores.append(logits.float())
    finally:
        tokenizer.padding_side = side
    heads = getattr(getattr(net, "config", None), "num_labels", 1) or 1
    return torch.cat(scores) if scores else torch.zeros((0, heads), device=device)


def model_heads(net) -> dict | None:
    """The heads a loader recorded on the network's config (training/core/heads.py); None: one head."""
    return getattr(getattr(net, "config", None), "arbiter_heads", None) or None


def reward_scores(net, tokenizer, prompts: list, responses: list, *, batch_size: int = 16, cap: int | None = None,
                  weights: dict[str, float] | None = None):
    """Rewards as a float tensor on the model's device, one per (prompt, response) pair. A
    multi-objective model gives sum(w_k * head_k) under `weights` (None: the weights it was saved
    with); a single-head model refuses any weights (heads.WeightsError, naming the field)."""
    import torch

    from training.core.heads import weights_check, weights_vector

    heads = model_heads(net)
    weights_check(heads, weights)
    scores = head_scores(net, tokenizer, prompts, responses, batch_size=batch_size, cap=cap)
    if heads is None:
        return scores[:, 0]
    vector = torch.tensor(weights_vector(heads, weights), dtype=scores.dtype, device=scores.device)
    return scores @ vector
