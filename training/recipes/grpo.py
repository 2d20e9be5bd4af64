"""GRPO recipe: TRL's GRPOTrainer. Each prompt gets num_generations responses; a response's
advantage is its reward minus the group's mean, divided by the group's std (Shao et al. 2024),
with an optional KL term to the reference in the loss (beta; 0 keeps no reference)."""
from __future__ import annotations

from dataclasses import dataclass

from training.recipes.base import _f
from training.recipes.online import OnlineConfig, register_online, train_online
from training.recipes.catalog import TrainContext

LOSS_TYPES = ("dapo", "grpo", "dr_grpo", "bnpo", "cispo")


@dataclass
class GRPOConfig(OnlineConfig):
    """GRPO's own settings: TRL's GRPOConfig takes them under the same names."""

    beta: float = _f(0.04, "KL coefficient: weight of the KL to the reference in the loss (0: no reference is kept, less memory).", minimum=0, maximum=100)
    loss_type: str = _f("dapo", "Loss normalisation: dapo (per token over the batch, TRL's default), grpo (per sequence), dr_grpo (no length bias), bnpo, cispo.",
                        choices=LOSS_TYPES)
    scale_rewards: str = _f("group", "Divide advantages by the std of the group, of the batch, or not at all (Dr. GRPO).", choices=("group", "batch", "none"))


RECIPE = register_online(
    method="grpo",
    label="GRPO policy",
    description="A policy trained with group-relative policy optimisation (TRL) to raise a reward model's score on the snapshot's prompts; no critic.",
    config_class=GRPOConfig,
    module=__name__,
)


def train(ctx: TrainContext) -> dict:
    import trl

    return train_online(ctx, RECIPE, trainer_cls=trl.GRPOTrainer, args_cls=trl.GRPOConfig)
