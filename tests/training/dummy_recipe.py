"""A training method that exists only in tests: registering it is all it takes to appear in the
start form, the API and the admin (tests/training/test_recipes_registry.py)."""
from __future__ import annotations

from dataclasses import dataclass

from training.recipes.base import TrainConfig, _f
from training.recipes.catalog import Metric, Recipe, register


@dataclass
class EchoConfig(TrainConfig):
    echo_volume: int = _f(3, "How loud the echo is.", minimum=1)


RECIPE = register(Recipe(
    method="echo",
    label="Echo policy (test)",
    description="Repeats its demonstrations; a method that exists only in tests.",
    config_class=EchoConfig,
    reads="sft",
    base_kinds=("causal_lm",),
    produces="policy",
    module=__name__,
    metrics=(Metric("echoes", "Echoes", group="Echoes"),),
    evaluates="accuracy: how often the echo came back.",
))


def train(ctx) -> dict:
    ctx.progress.say(f"echo at volume {ctx.config['echo_volume']} from {ctx.snapshot_dir.name}")
    ctx.progress.metrics({"step": 1, "loss": 0.5, "echoes": 3.0})
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    return {"global_step": 1, "resolved_config": dict(ctx.config), "test": {"accuracy": 0.75, "accuracy_n": 4},
            "reward_model_path": str(ctx.reward_model_path) if ctx.reward_model_path else None}


ONLINE = register(Recipe(
    method="echo_online",
    label="Online echo (test)",
    description="Scores its echoes with a reward model; exists only in tests.",
    config_class=EchoConfig,
    reads="sft",
    base_kinds=("causal_lm",),
    produces="policy",
    module=__name__,
    needs_reward_model=True,
))
