"""Reward model recipe: Bradley-Terry loss on (chosen, rejected) pairs through TRL's
RewardTrainer; LoRA through peft (task SEQ_CLS) with the score head trained in full."""
from __future__ import annotations

from pathlib import Path

from training.recipes.base import RewardConfig
from training.recipes.common import (
    add_length_column,
    distribution,
    lora_config,
    training_args_kwargs,
    with_length_column,
)

ARTIFACT_KIND = "reward_model"
Config = RewardConfig
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


def trainer_build(*, cfg: RewardConfig, model, tokenizer, train_ds, use_lora: bool, output_dir, device_type: str, callbacks=()):
    from trl import RewardConfig as TRLRewardConfig
    from trl import RewardTrainer

    args = TRLRewardConfig(
        **training_args_kwargs(cfg, output_dir=output_dir, device_type=device_type),
        center_rewards_coefficient=cfg.center_rewards_coefficient,
    )
    peft_config = None
    if use_lora:
        heads = [name for name, _ in model.named_children() if name in _HEADS]
        peft_config = lora_config(cfg, task_type="SEQ_CLS", model=model, modules_to_save=heads)
    trainer = with_length_column(RewardTrainer)(
        model=model,
        args=args,
        train_dataset=prepare_columns(train_ds, cfg),
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=list(callbacks),
    )
    if cfg.group_by_length:
        trainer.train_dataset = add_length_column(trainer.train_dataset, ("chosen_ids", "rejected_ids"))
    return trainer


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
        "reward_chosen_mean": sum(chosen) / len(chosen) if chosen else None,
        "reward_rejected_mean": sum(rejected) / len(rejected) if rejected else None,
        "margin": distribution(margins),
    }


def save(*, trainer, out_dir: Path) -> None:
    """Safetensors only: the full model, or the LoRA adapter with its trained score head."""
    trainer.save_model(str(out_dir))
    trainer.processing_class.save_pretrained(str(out_dir))
