"""SFT recipe: TRL's SFTTrainer on the snapshot's `sft` split (demonstrations and agreed-best
responses, {prompt, completion}, text or conversational). The loss covers the completion only;
conversational rows go through the tokenizer's chat template. Full or LoRA."""
from __future__ import annotations

import math
import typing
from dataclasses import dataclass
from pathlib import Path

from training.recipes.base import ConfigError, _f
from training.recipes.common import Hooks, PolicyConfig, policy_samples, train_with_trainer, trainer_make
from training.recipes.catalog import Metric, register_policy


@dataclass
class SFTConfig(PolicyConfig):
    """SFT: next-token loss on the completion of each (prompt, completion) row."""

    completion_only_loss: bool = _f(True, "Loss on the completion only (off: on the prompt too).")
    packing: bool = _f(False, "Pack several rows into each max_length sequence (best-fit; needs padding-free attention, GPU).")

    LR_DEFAULTS: typing.ClassVar[tuple[float, float]] = (2e-4, 2e-5)
    PADDING_FREE_SUPPORTED: typing.ClassVar[bool] = True

    @classmethod
    def check(cls, values: dict) -> None:
        # TRL's best-fit packing turns padding-free on whatever padding_free says.
        if values["packing"] and values["padding_free"] is False:
            raise ConfigError("padding_free: packing always runs padding-free in TRL; leave padding_free on auto or turn packing off")


RECIPE = register_policy(
    method="sft",
    label="SFT policy (demonstrations)",
    description="Teaches a language model to answer like the snapshot's demonstrations and agreed-best responses.",
    config_class=SFTConfig,
    reads="sft",
    module=__name__,
    metrics=(Metric("token_accuracy", "Next-token accuracy", higher_is_better=True, sources=("mean_token_accuracy",), group="Accuracy"),),
    evaluates="loss and perplexity of the completions of the test split, for the tuned model and the base model.",
    row_noun="demonstrations",
)


def trainer_build(*, cfg: SFTConfig, model, tokenizer, train_ds, use_lora: bool, output_dir, device_type: str, callbacks=(), test_ds=None):
    from trl import SFTConfig as TRLSFTConfig
    from trl import SFTTrainer

    extra = {}
    if test_ds is not None and len(test_ds):
        extra["eval_dataset"] = test_ds  # tokenized with the training split, through the same template
    return trainer_make(
        trainer_cls=SFTTrainer,
        args_cls=TRLSFTConfig,
        cfg=cfg,
        model=model,
        tokenizer=tokenizer,
        train_ds=train_ds,
        use_lora=use_lora,
        output_dir=output_dir,
        device_type=device_type,
        callbacks=callbacks,
        method_args={
            "completion_only_loss": cfg.completion_only_loss,
            "packing": cfg.packing,
            "padding_free": bool(cfg.padding_free),
            "eval_packing": False,  # the test loss is per row, never across packed rows
            "dataset_text_field": "text",
        },
        lora_task_type="CAUSAL_LM",
        length_columns=("input_ids",),
        **extra,
    )


def _loss(trainer) -> float | None:
    # Length grouping is for training batches; Trainer would apply it to the eval sampler too.
    strategy, trainer.args.train_sampling_strategy = trainer.args.train_sampling_strategy, "sequential"
    try:
        metrics = trainer.evaluate(metric_key_prefix="test")
    finally:
        trainer.args.train_sampling_strategy = strategy
    return metrics.get("test_loss", metrics.get("eval_loss"))


def baseline(*, trainer, cfg: SFTConfig, test_ds) -> dict:
    """The base model's loss on the test completions, before the first step."""
    if trainer.eval_dataset is None:
        return {}
    loss = _loss(trainer)
    return {"base_loss": loss, "base_perplexity": math.exp(min(loss, 50))} if loss is not None else {}


def evaluate(*, trainer, cfg: SFTConfig, test_ds) -> dict:
    if test_ds is None or len(test_ds) == 0 or trainer.eval_dataset is None:
        return {"test_rows": 0, "note": "the snapshot has no test split"}
    loss = _loss(trainer)
    out = {"test_rows": len(test_ds), "loss": loss, "perplexity": math.exp(min(loss, 50)) if loss is not None else None}
    return out


def samples(*, trainer, cfg: SFTConfig, test_ds, base_path: Path) -> list[dict]:
    """Greedy answers of the tuned model beside the base model, with the demonstrated answer."""
    rows = policy_samples(trainer=trainer, cfg=cfg, test_ds=test_ds, base_path=base_path, keep=("completion",))
    for row in rows:
        row["demonstration"] = row.pop("completion", None)
    return rows


def train(ctx) -> dict:
    hooks = Hooks(trainer_build=trainer_build, evaluate=evaluate, samples=samples, baseline=baseline, columns=("prompt", "completion"))
    return train_with_trainer(ctx, RECIPE, hooks)
