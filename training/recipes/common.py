"""Pieces both recipes share: the trainer set-up (training arguments from a recipe config, LoRA
settings, callbacks, the length column that length-grouped batching reads), saving, tokenizer
loading. Imported only on a worker (and by bench/train_throughput.py): it may import torch
freely inside functions."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from training.recipes.base import TrainConfig

LENGTH_COLUMN = "length"


def training_args_kwargs(cfg: TrainConfig, *, output_dir: Path | str, device_type: str) -> dict[str, Any]:
    """Keyword arguments shared by TRL's RewardConfig and DPOConfig."""
    return dict(
        output_dir=str(output_dir),
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.num_train_epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        per_device_eval_batch_size=cfg.per_device_eval_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay,
        lr_scheduler_type=cfg.lr_scheduler_type,
        max_length=cfg.max_length,
        seed=cfg.seed,
        bf16=bool(cfg.bf16),
        fp16=False,
        gradient_checkpointing=bool(cfg.gradient_checkpointing),
        torch_compile=bool(cfg.torch_compile),
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        eval_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=device_type == "cpu",
        dataloader_num_workers=0,
        # Length-grouped batches: pairs of similar length share a batch, so padding is small.
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "random",
        length_column_name=LENGTH_COLUMN,
        # Fused AdamW: one kernel per parameter group on GPU instead of a loop of small ones.
        optim="adamw_torch_fused" if device_type == "cuda" else "adamw_torch",
    )


def lora_config(cfg: TrainConfig, *, task_type: str, model, modules_to_save: list[str] | None = None):
    """LoRA on every linear layer of the backbone, never on the output head (that one is trained
    in full through modules_to_save for a reward model)."""
    from peft import LoraConfig

    head = set(modules_to_save or [])
    import torch

    targets = sorted(
        {
            name.rsplit(".", 1)[-1]
            for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and name.split(".")[0] not in head and name.rsplit(".", 1)[-1] not in head | {"lm_head"}
        }
    )
    return LoraConfig(
        task_type=task_type,
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=targets,
        modules_to_save=modules_to_save,
    )


def trainer_make(
    *,
    trainer_cls,
    args_cls,
    cfg: TrainConfig,
    model,
    tokenizer,
    train_ds,
    use_lora: bool,
    output_dir: Path | str,
    device_type: str,
    callbacks=(),
    method_args: dict[str, Any],
    lora_task_type: str,
    lora_modules_to_save: list[str] | None = None,
    length_columns: tuple[str, ...],
    **trainer_kwargs,
):
    """The trainer set-up every recipe shares, so that a recipe's trainer_build passes only what
    is its own: TRL's config class and the method's arguments, the LoRA task, the columns whose
    length groups batches, and any extra trainer argument (DPO: ref_model).

    The shared part: TRL's config from training_args_kwargs (device flags included), LoRA through
    peft (None: full training), the run's callbacks, and the length column kept through Trainer's
    column pruning. That column is filled only after the trainer is built, because the lengths are
    those of the token ids the trainer has just produced from the split."""
    args = args_cls(**training_args_kwargs(cfg, output_dir=output_dir, device_type=device_type), **method_args)
    peft_config = None
    if use_lora:
        peft_config = lora_config(cfg, task_type=lora_task_type, model=model, modules_to_save=lora_modules_to_save)
    trainer = with_length_column(trainer_cls)(
        model=model,
        args=args,
        train_dataset=train_ds,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=list(callbacks),
        **trainer_kwargs,
    )
    if cfg.group_by_length:
        trainer.train_dataset = add_length_column(trainer.train_dataset, length_columns)
    return trainer


def save(*, trainer, out_dir: Path) -> None:
    """Safetensors only: the full model, or the LoRA adapter (with a reward model's trained score
    head, which LoRA keeps through modules_to_save); the tokenizer beside it."""
    trainer.save_model(str(out_dir))
    trainer.processing_class.save_pretrained(str(out_dir))


def add_length_column(dataset, columns: tuple[str, ...]):
    """Length of the longer sequence of a pair, for LengthGroupedSampler (it reads this column)."""
    if LENGTH_COLUMN in dataset.column_names:
        dataset = dataset.remove_columns(LENGTH_COLUMN)

    def length(example):
        return {LENGTH_COLUMN: max(sum(len(example[c]) for c in group.split("+")) for group in columns)}

    return dataset.map(length, desc="Measuring lengths")


def load_tokenizer(path: Path | str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    if tokenizer.pad_token is None:
        # Right padding with the eos token: the attention mask hides it, and SequenceClassification
        # models find the last real token through config.pad_token_id.
        tokenizer.pad_token = tokenizer.eos_token
    if not getattr(tokenizer, "chat_template", None):
        # Encoders (MiniLM) and base models ship without one, yet snapshots of chat prompts are
        # conversational: a plain "role: content" transcript lets TRL tokenize them all the same.
        tokenizer.chat_template = PLAIN_CHAT_TEMPLATE
    return tokenizer


PLAIN_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)


def is_conversational(value) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], dict) and "role" in value[0]


def render_prompt(tokenizer, prompt) -> str:
    """The text a model continues: the chat template with the generation prompt for chats, the prompt as is otherwise."""
    if is_conversational(prompt):
        return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    return prompt


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def with_length_column(trainer_cls):
    """The trainer subclass that keeps the length column through Trainer's column pruning, so
    the length-grouped sampler can read it (the collators ignore it)."""

    class LengthGrouped(trainer_cls):
        def _set_signature_columns_if_needed(self):
            super()._set_signature_columns_if_needed()
            if LENGTH_COLUMN not in self._signature_columns:
                self._signature_columns = [*self._signature_columns, LENGTH_COLUMN]

    LengthGrouped.__name__ = f"LengthGrouped{trainer_cls.__name__}"
    return LengthGrouped


def distribution(values) -> dict:
    """Summary and a 20-bin histogram, for the run page's margin chart."""
    import numpy as np

    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return {"count": 0}
    counts, edges = np.histogram(arr, bins=20)
    q = np.percentile(arr, [5, 25, 50, 75, 95])
    return {
        "count": int(arr.size),
        "mean": float(arr.mean()),
        "std": float(arr.std()),
        "min": float(arr.min()),
        "p5": float(q[0]),
        "p25": float(q[1]),
        "p50": float(q[2]),
        "p75": float(q[3]),
        "p95": float(q[4]),
        "max": float(arr.max()),
        "histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
    }
