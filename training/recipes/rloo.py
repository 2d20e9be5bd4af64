"""RLOO recipe: TRL's RLOOTrainer. Each prompt gets num_generations responses; a response's
advantage is its reward minus the mean reward of the other responses to the same prompt (REINFORCE
leave-one-out, Ahmadian et al. 2024), with a KL penalty to the reference folded into the reward."""
from __future__ import annotations

from dataclasses import dataclass

from training.recipes.base import _f
from training.recipes.online import OnlineConfig, register_online, train_online
from training.recipes.catalog import TrainContext


@dataclass
class RLOOConfig(OnlineConfig):
    """RLOO's own settings: TRL's RLOOConfig takes them under the same names."""

    beta: float = _f(0.05, "KL coefficient: weight of the KL to the reference, subtracted from the reward (0: no reference is kept).", minimum=0, maximum=100)
    normalize_advantages: bool = _f(False, "Whiten the advantages over the batch.")


RECIPE = register_online(
    method="rloo",
    label="RLOO policy",
    description="A policy trained with REINFORCE leave-one-out (TRL) to raise a reward model's score on the snapshot's prompts; no critic.",
    config_class=RLOOConfig,
    module=__name__,
)


def train(ctx: TrainContext) -> dict:
    import trl

    return train_online(ctx, RECIPE, trainer_cls=trl.RLOOTrainer, args_cls=trl.RLOOConfig)
