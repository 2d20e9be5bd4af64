"""RLOO recipe: TRL's RLOOTrainer. Each prompt gets num_generations responses; a response's
advantage is its reward minus the mean reward of the other responses to the same prompt (REINFORCE
leave-one-out, Ahmadian et al. 2024), with a KL penalty to the reference folded into the reward."""
from __future__ import annotations

from dataclasses import dataclass

from training.recipes.base import _f
from training.recipes.online import METRICS, OnlineConfig
from training.recipes.registry import Recipe, TrainContext, register


@dataclass
class RLOOConfig(OnlineConfig):
    beta: float = _f(0.05, "KL coefficient: weight of the KL to the reference, subtracted from the reward (0: no reference is kept).", minimum=0)
    normalize_advantages: bool = _f(False, "Whiten the advantages over the batch.")


RECIPE = register(Recipe(
    method="rloo",
    label="RLOO policy",
    description="A policy trained with REINFORCE leave-one-out (TRL) to raise a reward model's score on the snapshot's prompts; no critic.",
    config_class=RLOOConfig,
    reads="prompts",
    base_kinds=("causal_lm", "policy"),
    produces="policy",
    module=__name__,
    metrics=METRICS,
    needs_reward_model=True,
))


def train(ctx: TrainContext) -> dict:
    from trl import RLOOConfig as TRLConfig
    from trl import RLOOTrainer

    from training.recipes.online import train_online

    return train_online(ctx, config_class=RLOOConfig, trainer_cls=RLOOTrainer, args_cls=TRLConfig,
                        method_args=lambda cfg: {"beta": cfg.beta, "normalize_advantages": cfg.normalize_advantages})
