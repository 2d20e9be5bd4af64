"""Reward model recipe: Bradley-Terry loss on (chosen, rejected) pairs through TRL's
RewardTrainer; LoRA through peft (task SEQ_CLS) with the score head trained in full."""
from __future__ import annotations

import typing
from dataclasses import dataclass
from pathlib import Path

from training.recipes.base import TrainConfig, _f
from training.recipes.common import Hooks, distribution, train_with_trainer, trainer_make
from training.recipes.catalog import Metric, Recipe, register


@dataclass
class RewardConfig(TrainConfig):
    """Reward model: Bradley-Terry loss on (chosen, rejected) through TRL's RewardTrainer."""

    use_margin: bool = _f(False, "Use the snapshot's margin column (Likert strength, rank distance) in the loss: -log σ(r_c - r_r - margin).")
    center_rewards_coefficient: float | None = _f(None, "Pull rewards towards mean zero with this weight (0.01 is a common value).", minimum=0, maximum=100)

    LR_DEFAULTS: typing.ClassVar[tuple[float, float]] = (1e-4, 1e-5)


RECIPE = register(Recipe(
    method="reward",
    label="Reward model (Bradley–Terry)",
    description="Scores a response to a prompt; trained on the snapshot's preference pairs (chosen above rejected).",
    config_class=RewardConfig,
    reads="preference",
    base_kinds=("causal_lm", "encoder", "reward_model"),
    produces="reward_model",
    module=__name__,
    metrics=(
        Metric("accuracy", "Pair accuracy", higher_is_better=True, sources=("accuracy",), group="Accuracy"),
        Metric("margin", "Reward margin", higher_is_better=True, sources=("margin",), group="Reward margin"),
    ),
    evaluates="accuracy: share of test pairs whose chosen response scores above the rejected one; the margin distribution.",
    row_noun="pairs",
))
# Names of the classification head in transformers models (decoder LMs: score; encoders: classifier).
_HEADS = ("score", "classifier")


def model_load(*, path: Path | str, dtype=None):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(
        str(path), num_labels=1, use_safetensors=True, dtype=dtype, attn_implementation="sdpa"
    )


def prepare_columns(dataset, cfg: RewardConfig):
    """RewardTrainer uses a `margin` column whenever it is present: keep it only when asked,
    and give pairs without a strength a margin of 0."""
    if "margin" not in dataset.column_names:
        return dataset
    if not cfg.use_margin:
        return dataset.remove_columns("margin")
    return dataset.map(lambda ex: {"margin": float(ex["margin"] or 0.0)})


def trainer_build(*, cfg: RewardConfig, model, tokenizer, train_ds, use_lora: bool, output_dir, device_type: str, callbacks=(), test_ds=None):
    from trl import RewardConfig as TRLRewardConfig
    from trl import RewardTrainer

    return trainer_make(
        trainer_cls=RewardTrainer,
        args_cls=TRLRewardConfig,
        cfg=cfg,
        model=model,
        tokenizer=tokenizer,
        train_ds=prepare_columns(train_ds, cfg),
        use_lora=use_lora,
        output_dir=output_dir,
        device_type=device_type,
        callbacks=callbacks,
        method_args={
            "center_rewards_coefficient": cfg.center_rewards_coefficient,
            # A reward model has a score head, no LM head: Liger's fused linear cross-entropy would
            # replace its forward with a language model's (measured: AttributeError 'lm_head' on an
            # H200). RoPE, RMSNorm and SwiGLU kernels still apply.
            "liger_kernel_config": {"fused_linear_cross_entropy": False, "cross_entropy": False},
        },
        lora_task_type="SEQ_CLS",
        # The score head starts random: with LoRA it is trained in full beside the adapter.
        lora_modules_to_save=[name for name, _ in model.named_children() if name in _HEADS],
        length_columns=("chosen_ids", "rejected_ids"),
    )


def pair_rewards(model, tokenizer, pairs, *, batch_size: int, bf16: bool) -> tuple[list[float], list[float]]:
    """Rewards of tokenized pairs ({chosen_ids, rejected_ids}), in order."""
    import torch

    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id
    model.eval()
    chosen, rejected = [], []
    for start in range(0, len(pairs), batch_size):
        batch = pairs[start : start + batch_size]
        seqs = [ex["chosen_ids"] for ex in batch] + [ex["rejected_ids"] for ex in batch]
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = 1
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            scores = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits[:, 0].float().cpu()
        chosen += scores[: len(batch)].tolist()
        rejected += scores[len(batch) :].tolist()
    return chosen, rejected


def evaluate(*, trainer, cfg: RewardConfig, test_ds) -> dict:
    """Accuracy (chosen scored above rejected) and the reward-margin distribution on the test split."""
    if test_ds is None or len(test_ds) == 0:
        return {"test_pairs": 0, "note": "the snapshot has no test split"}
    prepared = trainer._prepare_dataset(prepare_columns(test_ds, cfg), trainer.processing_class, trainer.args, "test")
    pairs = [{"chosen_ids": ex["chosen_ids"], "rejected_ids": ex["rejected_ids"]} for ex in prepared]
    chosen, rejected = pair_rewards(trainer.model, trainer.processing_class, pairs, batch_size=cfg.per_device_eval_batch_size, bf16=bool(cfg.bf16))
    margins = [c - r for c, r in zip(chosen, rejected)]
    return {
        "test_pairs": len(pairs),
        "test_pairs_dropped": len(test_ds) - len(pairs),
        "accuracy": sum(m > 0 for m in margins) / len(margins) if margins else None,
        "accuracy_n": len(margins),
        "reward_chosen_mean": sum(chosen) / len(chosen) if chosen else None,
        "reward_rejected_mean": sum(rejected) / len(rejected) if rejected else None,
        "margin": distribution(margins),
    }


def train(ctx) -> dict:
    hooks = Hooks(model_load=model_load, trainer_build=trainer_build, evaluate=evaluate, columns=("prompt", "chosen", "rejected"))
    return train_with_trainer(ctx, RECIPE, hooks)
