"""DPO recipe: TRL's DPOTrainer on the snapshot's preference pairs (text or conversational).
With LoRA the reference is the same model with the adapter switched off (TRL does this when no
ref_model is given), so no second copy of the weights sits in memory."""
from __future__ import annotations

import typing
from dataclasses import dataclass
from functools import partial

from training.recipes.base import ConfigError, _f
from training.recipes.common import Hooks, PolicyConfig, completion_logps, policy_samples, reference_of, train_with_trainer, trainer_make
from training.recipes.catalog import Metric, register_policy

DPO_LOSS_TYPES = (
    "sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard",
    "aot", "aot_unpaired", "apo_zero", "apo_down", "discopop", "sigmoid_norm",
)
# The losses whose formula reads label_smoothing in TRL 1.16 (DPOTrainer.dpo_loss); the others ignore it.
LABEL_SMOOTHING_LOSSES = ("robust", "exo_pair", "aot", "aot_unpaired")


@dataclass
class DPOConfig(PolicyConfig):
    """DPO: TRL's DPOTrainer; with LoRA the adapter switched off is the reference (no second copy)."""

    beta: float = _f(0.1, "Strength of the pull towards the reference model (higher: stays closer).", minimum=0, maximum=100)
    loss_type: str = _f("sigmoid", "DPO loss: sigmoid (original DPO), ipo, robust, hinge, …", choices=DPO_LOSS_TYPES)
    label_smoothing: float = _f(0.0, "Probability that a label is flipped: read by the robust, exo_pair (must be above 0), aot and aot_unpaired "
                                "losses only; below 0.5.", minimum=0, maximum=0.5)
    precompute_ref_log_probs: bool = _f(False, "Compute the reference log-probabilities once before training (saves a forward pass per step).")

    LR_DEFAULTS: typing.ClassVar[tuple[float, float]] = (5e-5, 1e-6)
    # TRL 1.16's DPOTrainer turns padding_free off with only a warning ("temporarily unavailable
    # after a refactor"): it is refused here rather than shown as on while the run pads.
    PADDING_FREE_SUPPORTED: typing.ClassVar[bool] = False
    UNUSED: typing.ClassVar[dict[str, str]] = {
        "padding_free": "TRL 1.16's DPOTrainer has padding-free batches disabled and pads whatever it is told",
    }

    @classmethod
    def check(cls, values: dict) -> None:
        loss, smoothing = values["loss_type"], values["label_smoothing"]
        if smoothing and loss not in LABEL_SMOOTHING_LOSSES:
            raise ConfigError(f"label_smoothing: the {loss} loss ignores it (TRL 1.16 reads it only for "
                              f"{', '.join(LABEL_SMOOTHING_LOSSES)}); set it to 0 or choose one of those losses")
        if loss == "robust" and not smoothing < 0.5:
            raise ConfigError("label_smoothing: must be below 0.5 for the robust loss")
        if loss == "exo_pair" and smoothing == 0:
            # TRL raises this only when it builds the trainer, after the run has waited in the queue.
            raise ConfigError("label_smoothing: the exo_pair loss needs a value above 0 (the EXO paper uses 0.001)")


RECIPE = register_policy(
    method="dpo",
    label="DPO policy",
    description="Tunes a language model directly on the snapshot's preference pairs, held close to where it started.",
    config_class=DPOConfig,
    reads="preference",
    module=__name__,
    metrics=(
        Metric("accuracy", "Implicit-reward accuracy", higher_is_better=True, sources=("rewards/accuracies",), group="Accuracy"),
        Metric("margin", "Implicit-reward margin", higher_is_better=True, sources=("rewards/margins",), group="Reward margin"),
    ),
    evaluates="accuracy: share of test pairs whose implicit reward β·log π/π_ref is higher for the chosen response.",
    row_noun="pairs",
)


def _drop_margin(ds):
    if ds is not None and "margin" in ds.column_names:
        return ds.remove_columns("margin")
    return ds


def trainer_build(*, cfg: DPOConfig, model, tokenizer, train_ds, use_lora: bool, output_dir, device_type: str, callbacks=(), test_ds=None):
    from trl import DPOConfig as TRLDPOConfig
    from trl import DPOTrainer

    extra = {}
    if cfg.precompute_ref_log_probs and test_ds is not None and len(test_ds):
        # Full training keeps no reference copy: TRL can compute the reference log-probs of the
        # test split only before the first step, so it gets the split now (evaluate() after
        # training would refuse a new dataset and the run would lose its model).
        extra["eval_dataset"] = _drop_margin(test_ds)
    return trainer_make(
        trainer_cls=DPOTrainer,
        args_cls=TRLDPOConfig,
        cfg=cfg,
        model=model,
        tokenizer=tokenizer,
        train_ds=_drop_margin(train_ds),
        use_lora=use_lora,
        output_dir=output_dir,
        device_type=device_type,
        callbacks=callbacks,
        method_args={
            "beta": cfg.beta,
            "loss_type": [cfg.loss_type],
            "label_smoothing": cfg.label_smoothing,
            "precompute_ref_log_probs": cfg.precompute_ref_log_probs,
            "padding_free": False,  # see DPOConfig.UNUSED
        },
        lora_task_type="CAUSAL_LM",
        length_columns=("prompt_ids+chosen_ids", "prompt_ids+rejected_ids"),
        ref_model=None,  # with LoRA, TRL uses the model with its adapter switched off as the reference
        **extra,
    )


def evaluate(*, trainer, cfg: DPOConfig, test_ds) -> dict:
    """Implicit-reward accuracy and margins on the test split (β·log π/π_ref of chosen vs rejected)."""
    if test_ds is None or len(test_ds) == 0:
        return {"test_pairs": 0, "note": "the snapshot has no test split"}
    # Length grouping is for training batches; Trainer would apply it to the eval sampler too,
    # and the test split has no length column.
    trainer.args.train_sampling_strategy = "sequential"
    if trainer.eval_dataset is not None:  # prepared (and its reference log-probs computed) at build time
        metrics = trainer.evaluate(metric_key_prefix="test")
    else:
        metrics = trainer.evaluate(eval_dataset=_drop_margin(test_ds), metric_key_prefix="test")
    pick = {
        "accuracy": "test_rewards/accuracies",
        "margin_mean": "test_rewards/margins",
        "reward_chosen_mean": "test_rewards/chosen",
        "reward_rejected_mean": "test_rewards/rejected",
        "loss": "test_loss",
        "logps_chosen_mean": "test_logps/chosen",
        "logps_rejected_mean": "test_logps/rejected",
    }
    out = {"test_pairs": len(test_ds)}
    for key, src in pick.items():
        # TRL's own log() renames evaluation metrics to eval_*, whatever the prefix asked for.
        value = metrics.get(src, metrics.get(src.replace("test_", "eval_", 1)))
        if value is not None:
            out[key] = value
    # TRL averages its per-batch shares, which is not k of n when the last batch is short (19 pairs in
    # batches of 8 gave 0.417, "8 of 19" being 0.421): the accuracy shown is counted pair by pair.
    hits = pair_hits(trainer=trainer, cfg=cfg, rows=list(test_ds))
    out["accuracy"], out["accuracy_n"] = sum(hits) / len(hits), len(hits)
    return out


def pair_hits(*, trainer, cfg: DPOConfig, rows: list[dict]) -> list[bool]:
    """Per test pair: is the implicit reward β·(log π − log π_ref) of the chosen answer above the
    rejected one's (summed over the answer's tokens)?"""
    from pathlib import Path

    model, tokenizer, size = trainer.model, trainer.processing_class, cfg.per_device_eval_batch_size
    chosen = [{"prompt": r["prompt"], "completion": r["chosen"]} for r in rows]
    rejected = [{"prompt": r["prompt"], "completion": r["rejected"]} for r in rows]
    policy_c, policy_r = completion_logps(model, tokenizer, chosen, batch_size=size), completion_logps(model, tokenizer, rejected, batch_size=size)
    with reference_of(trainer, base_path=Path(model.config._name_or_path)) as ref:
        ref_c, ref_r = completion_logps(ref, tokenizer, chosen, batch_size=size), completion_logps(ref, tokenizer, rejected, batch_size=size)
    return [cfg.beta * (pc - rc) > cfg.beta * (pr - rr) for pc, rc, pr, rr in zip(policy_c, ref_c, policy_r, ref_r)]


def train(ctx) -> dict:
    # Samples: greedy answers of the trained policy beside its reference on held-out prompts.
    hooks = Hooks(trainer_build=trainer_build, evaluate=evaluate, samples=partial(policy_samples, keep=("chosen", "rejected")),
                  columns=("prompt", "chosen", "rejected"))
    return train_with_trainer(ctx, RECIPE, hooks)
