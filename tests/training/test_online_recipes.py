"""The online recipes as the web process sees them: registered, declared, documented, and
importable without torch."""
from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from training.recipes.catalog import RECIPE_MODULES, as_dict, get

pytestmark = pytest.mark.dbless  # the database plays no part: CI runs it on SQLite only

ONLINE = ("ppo", "rloo", "grpo")


@pytest.mark.parametrize("method", ONLINE)
def test_it_registers_each_online_method_on_prompts_and_a_reward_model(method):
    recipe = get(method)
    assert method in RECIPE_MODULES
    assert (recipe.reads, recipe.produces, recipe.needs_reward_model) == ("prompts", "policy", True)
    assert {"score", "kl", "entropy", "response_length"} <= {m.key for m in recipe.metrics}
    assert as_dict(recipe)["method"] == method
    cfg = recipe.config_class()  # every field has a default
    for f in dataclasses.fields(cfg):
        assert f.metadata.get("help"), f"{method}.{f.name} has no help text"


def test_it_builds_the_settings_of_a_device_from_a_run_config():
    from training.recipes.online import config_build
    from training.recipes.ppo import PPOConfig

    cfg = config_build(PPOConfig, {"kl_estimator": "k3", "unknown_to_this_version": 1}, use_lora=True, device_type="cpu",
                       bf16_supported=False, n_params=10)
    assert (cfg.kl_estimator, cfg.learning_rate, cfg.bf16, cfg.gradient_checkpointing) == ("k3", PPOConfig.LR_DEFAULTS[0], False, False)
    cfg = config_build(PPOConfig, {}, use_lora=False, device_type="cuda", bf16_supported=True, n_params=2_000_000_000)
    assert (cfg.learning_rate, cfg.bf16, cfg.gradient_checkpointing) == (PPOConfig.LR_DEFAULTS[1], True, True)


def test_it_imports_the_online_recipes_without_torch():
    code = ("import sys; import training.recipes.ppo, training.recipes.rloo, training.recipes.grpo; "
            "bad = [m for m in ('torch', 'transformers', 'trl') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
