"""KTO recipe: TRL's KTOTrainer on the snapshot's `unpaired` split ({prompt, completion, label}:
ratings at or over the project's threshold are desirable, the rest undesirable; a binary "both
bad" gives two undesirable rows). With LoRA the adapter switched off is the reference."""
from __future__ import annotations

import math
import typing
from dataclasses import dataclass
from pathlib import Path

from training.recipes.base import _f
from training.recipes.common import (
    Hooks,
    PolicyConfig,
    completion_logps,
    policy_samples,
    reference_of,
    train_with_trainer,
    trainer_make,
)
from training.recipes.catalog import Metric, register_policy


@dataclass
class KTOConfig(PolicyConfig):
    """KTO: prospect-theoretic loss on single responses labelled desirable or undesirable."""

    beta: float = _f(0.1, "Strength of the pull towards the reference model (higher: stays closer).", minimum=0, maximum=100)
    loss_type: str = _f("kto", "kto (the paper's loss) or apo_zero_unpaired.", choices=("kto", "apo_zero_unpaired"))
    desirable_weight: float | None = _f(
        None, "Weight of the desirable rows' loss. Auto: from the class balance (and from undesirable_weight when that one is set), so that "
        "desirable_weight·#desirable / (undesirable_weight·#undesirable) lands in TRL's advised [1, 4/3].", minimum=0, maximum=100, auto=True
    )
    undesirable_weight: float | None = _f(
        None, "Weight of the undesirable rows' loss. Auto: from the class balance and desirable_weight (see there).", minimum=0, maximum=100, auto=True
    )
    precompute_ref_log_probs: bool = _f(False, "Compute the reference log-probabilities once before training (saves a forward pass per step).")

    LR_DEFAULTS: typing.ClassVar[tuple[float, float]] = (5e-5, 5e-7)
    # KTO estimates its KL term from mismatched pairs of a fixed-order batch: it needs sequential
    # batches of at least 2 rows, so length grouping is refused rather than silently turned off.
    SEQUENTIAL: typing.ClassVar[bool] = True
    UNUSED: typing.ClassVar[dict[str, str]] = {
        "group_by_length": "KTO's KL estimate needs batches in a fixed order, so they are never grouped by length",
    }


RECIPE = register_policy(
    method="kto",
    label="KTO policy (ratings)",
    description="Tunes a language model on single responses rated good or bad (ratings, both-bad judgments), no pairs needed.",
    config_class=KTOConfig,
    reads="unpaired",
    module=__name__,
    metrics=(
        Metric("kl", "KL estimate", sources=("kl",), group="KL"),
        Metric("reward_desirable", "Reward of desirable rows", higher_is_better=True, sources=("rewards/chosen",), group="Rewards"),
        Metric("reward_undesirable", "Reward of undesirable rows", higher_is_better=False, sources=("rewards/rejected",), group="Rewards"),
    ),
    evaluates="accuracy: share of test rows whose implicit reward β·log π/π_ref has the sign of its label (desirable > 0, undesirable < 0).",
    row_noun="rows",
    min_train_rows=2,
)


# TRL's KTO docs: keep desirable_weight·D / (undesirable_weight·U) between 1 and 4/3.
RATIO_LOW, RATIO_HIGH = 1.0, 4 / 3


def weight_ratio(labels, desirable_weight: float, undesirable_weight: float) -> float | None:
    """desirable_weight·D / (undesirable_weight·U); None when a class is missing or a weight is 0."""
    d = sum(1 for x in labels if x)
    u = len(labels) - d
    if not d or not u or not undesirable_weight:
        return None
    return desirable_weight * d / (undesirable_weight * u)


def class_weights(labels, desirable_weight: float | None, undesirable_weight: float | None) -> tuple[float, float]:
    """Fill the auto weights so that desirable_weight·D / (undesirable_weight·U) lands in TRL's
    advised [1, 4/3]. A set weight is kept and the auto one is computed from it: leaving the auto
    one at 1 would let the set one alone decide the ratio (25 desirable / 75 undesirable with
    desirable_weight 2 gave 2/1, a ratio of 0.67). Both set: both kept (see weight_ratio)."""
    d = sum(1 for x in labels if x)
    u = len(labels) - d
    if desirable_weight is not None and undesirable_weight is not None:
        return desirable_weight, undesirable_weight
    if not d or not u:  # one class only: its weight alone scales the loss, the ratio means nothing
        return (desirable_weight if desirable_weight is not None else 1.0), (undesirable_weight if undesirable_weight is not None else 1.0)
    if desirable_weight is None and undesirable_weight is None:
        if d < u:
            return round(u / d, 4), 1.0  # up-weight the rarer desirable rows to balance
        if d > u * RATIO_HIGH:
            return 1.0, round(d / (u * RATIO_HIGH), 4)  # up-weight the rarer undesirable rows to the 4/3 edge
        return 1.0, 1.0
    # Four decimals for the log line, rounded towards the inside of the range so the ratio stays in it.
    inward = lambda x, up: math.ceil(x * 1e4) / 1e4 if up else math.floor(x * 1e4) / 1e4  # noqa: E731
    if desirable_weight is not None:
        ratio = desirable_weight * d / u  # with undesirable_weight 1
        target = min(max(ratio, RATIO_LOW), RATIO_HIGH)
        if target == ratio:
            return desirable_weight, 1.0
        return desirable_weight, inward(desirable_weight * d / (u * target), up=target == RATIO_HIGH)
    ratio = d / (undesirable_weight * u)  # with desirable_weight 1
    target = min(max(ratio, RATIO_LOW), RATIO_HIGH)
    if target == ratio:
        return 1.0, undesirable_weight
    return inward(target * undesirable_weight * u / d, up=target == RATIO_LOW), undesirable_weight


def prepare(*, train_ds, test_ds, cfg: KTOConfig, ctx):
    labels = train_ds["label"]
    if not all(isinstance(x, bool) for x in labels):
        raise ValueError("unpaired/train.jsonl: label must be true or false on every row")
    cfg.desirable_weight, cfg.undesirable_weight = class_weights(labels, cfg.desirable_weight, cfg.undesirable_weight)
    d = sum(labels)
    ctx.progress.say(f"{d} desirable and {len(labels) - d} undesirable rows; weights {cfg.desirable_weight:g} / {cfg.undesirable_weight:g}")
    notes = {"class_balance": {"desirable": d, "undesirable": len(labels) - d}}
    ratio = weight_ratio(labels, cfg.desirable_weight, cfg.undesirable_weight)
    if ratio is not None:
        notes["weight_ratio"] = round(ratio, 4)
        if not RATIO_LOW - 1e-3 <= ratio <= RATIO_HIGH + 1e-3:
            # Only weights the user set both can land here; they are kept, and the run says so.
            warning = (f"desirable_weight·{d} / (undesirable_weight·{len(labels) - d}) = {ratio:.3g}, outside the "
                       f"[1, 4/3] range TRL advises for KTO; leave one weight on auto to have it computed")
            ctx.progress.say(f"warning: {warning}")
            notes["weight_warning"] = warning
    return train_ds, test_ds, notes


def trainer_build(*, cfg: KTOConfig, model, tokenizer, train_ds, use_lora: bool, output_dir, device_type: str, callbacks=(), test_ds=None):
    from trl import KTOConfig as TRLKTOConfig
    from trl import KTOTrainer

    if cfg.desirable_weight is None or cfg.undesirable_weight is None:
        cfg.desirable_weight, cfg.undesirable_weight = class_weights(train_ds["label"], cfg.desirable_weight, cfg.undesirable_weight)
    cfg.group_by_length = False
    return trainer_make(
        trainer_cls=KTOTrainer,
        args_cls=TRLKTOConfig,
        cfg=cfg,
        model=model,
        tokenizer=tokenizer,
        train_ds=train_ds,
        use_lora=use_lora,
        output_dir=output_dir,
        device_type=device_type,
        callbacks=callbacks,
        method_args={
            "beta": cfg.beta,
            "loss_type": cfg.loss_type,
            "desirable_weight": cfg.desirable_weight,
            "undesirable_weight": cfg.undesirable_weight,
            "precompute_ref_log_probs": cfg.precompute_ref_log_probs,
            "train_sampling_strategy": "sequential",
        },
        lora_task_type="CAUSAL_LM",
        length_columns=(),
    )


def evaluate(*, trainer, cfg: KTOConfig, test_ds) -> dict:
    """Implicit-reward accuracy on the test split: β·(log π − log π_ref) of the completion is above
    zero for desirable rows and below for undesirable ones."""
    if test_ds is None or len(test_ds) == 0:
        return {"test_rows": 0, "note": "the snapshot has no test split"}
    rows = list(test_ds)
    model, tokenizer = trainer.model, trainer.processing_class
    policy = completion_logps(model, tokenizer, rows, batch_size=cfg.per_device_eval_batch_size)
    with reference_of(trainer, base_path=Path(model.config._name_or_path)) as ref:
        reference = completion_logps(ref, tokenizer, rows, batch_size=cfg.per_device_eval_batch_size)
    rewards = [cfg.beta * (p - r) for p, r in zip(policy, reference)]
    hits = [(rw > 0) == bool(row["label"]) for rw, row in zip(rewards, rows)]
    good = [rw for rw, row in zip(rewards, rows) if row["label"]]
    bad = [rw for rw, row in zip(rewards, rows) if not row["label"]]
    return {
        "test_rows": len(rows),
        "accuracy": sum(hits) / len(hits),
        "accuracy_n": len(hits),
        "reward_desirable_mean": sum(good) / len(good) if good else None,
        "reward_undesirable_mean": sum(bad) / len(bad) if bad else None,
        "desirable_rows": len(good),
        "undesirable_rows": len(bad),
    }


def samples(*, trainer, cfg: KTOConfig, test_ds, base_path: Path) -> list[dict]:
    if test_ds is not None:
        test_ds = test_ds.filter(lambda ex: bool(ex["label"]))  # show the prompts with a desirable answer on record
    return policy_samples(trainer=trainer, cfg=cfg, test_ds=test_ds, base_path=base_path, keep=("completion",))


def train(ctx) -> dict:
    hooks = Hooks(trainer_build=trainer_build, evaluate=evaluate, samples=samples, prepare=prepare, columns=("prompt", "completion", "label"))
    return train_with_trainer(ctx, RECIPE, hooks)
