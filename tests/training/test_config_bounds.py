"""Recipe configs and job settings have bounds, declared once beside each field (training.recipes.base._f):
a value outside them, NaN or infinity (as a number or as the strings "nan"/"inf"), or a boolean where a
number belongs is a 400 that names the field, on the API and on the run form, and nothing is stored.
A value at a bound is accepted."""
from __future__ import annotations

import dataclasses
import typing

import pytest

from training.judge.models import JudgeJob
from training.loop.models import Job
from training.models import ModelArtifact, TrainingRun
from training.recipes import catalog
from training.recipes.base import MAX_SEED, MAX_TOKENS, config_validate

pytestmark = pytest.mark.django_db


def run_body(project, snapshot, method, config):
    return {"project": project.slug, "snapshot": snapshot.pk, "base_model": "smol", "method": method, "config": config}


def test_it_declares_a_minimum_and_a_maximum_for_every_number_of_every_recipe():
    recipes = [r for r in catalog.all_recipes() if r.module.startswith("training.recipes.")]
    assert {r.method for r in recipes} >= {"reward", "dpo", "sft", "kto", "ppo", "rloo", "grpo"}
    for recipe in recipes:
        hints = typing.get_type_hints(recipe.config_class)
        for f in dataclasses.fields(recipe.config_class):
            if not {int, float} & {hints[f.name], *typing.get_args(hints[f.name])}:
                continue
            low, high = f.metadata.get("minimum"), f.metadata.get("maximum")
            assert low is not None and high is not None, f"{recipe.method}.{f.name} has no bounds"
            assert f.default is None or low <= f.default <= high, f"{recipe.method}.{f.name}: default outside its bounds"


def test_it_publishes_the_bounds_in_the_recipe_schema(api_for, owner):
    recipes = {r["method"]: r for r in api_for(owner).get("/api/training/recipes/").json()}
    fields = {row["name"]: row for row in recipes["ppo"]["config"]}
    assert (fields["temperature"]["minimum"], fields["temperature"]["maximum"]) == (0.01, 5.0)
    assert fields["max_new_tokens"]["maximum"] == MAX_TOKENS and fields["seed"]["maximum"] == MAX_SEED
    grpo = {row["name"]: row for row in recipes["grpo"]["config"]}
    assert grpo["top_p"]["maximum"] == 1 and grpo["vllm_gpu_memory_utilization"]["maximum"] == 1


@pytest.mark.parametrize("method, config, field, message", [
    ("ppo", {"temperature": 1e9}, "temperature", "must be at most 5.0"),
    ("ppo", {"max_new_tokens": 10**9}, "max_new_tokens", f"must be at most {MAX_TOKENS}"),
    ("grpo", {"top_p": 1e9}, "top_p", "must be at most 1"),
    ("grpo", {"num_generations": 10**6}, "num_generations", "must be at most 1024"),
    ("grpo", {"vllm_gpu_memory_utilization": 1e9}, "vllm_gpu_memory_utilization", "must be at most 1"),
    ("reward", {"seed": 10**30}, "seed", f"must be at most {MAX_SEED}"),
    ("reward", {"per_device_train_batch_size": 10**30}, "per_device_train_batch_size", "must be at most"),
    ("dpo", {"beta": "nan"}, "beta", "'nan' is not a finite number"),
    ("dpo", {"beta": "inf"}, "beta", "'inf' is not a finite number"),
    ("dpo", {"learning_rate": "-Infinity"}, "learning_rate", "is not a finite number"),
    ("dpo", {"max_steps": True}, "max_steps", "True is not a valid int"),
    ("dpo", {"beta": True}, "beta", "True is not a valid float"),
    ("dpo", {"label_smoothing": 0.6}, "label_smoothing", "must be at most 0.5"),
])
def test_it_refuses_a_config_value_outside_its_bounds_naming_the_field(api_for, project, snapshot, base_model, owner,
                                                                       method, config, field, message):
    response = api_for(owner).post("/api/training/runs/", run_body(project, snapshot, method, config), format="json")
    assert response.status_code == 400, response.content
    assert message in response.json()[field][0]
    assert not TrainingRun.objects.exists()


def test_it_accepts_values_at_the_bounds(api_for, project, snapshot, base_model, owner):
    config = {"seed": MAX_SEED, "max_length": MAX_TOKENS, "beta": 100, "learning_rate": 1, "lora_dropout": 0, "max_steps": -1}
    response = api_for(owner).post("/api/training/runs/", run_body(project, snapshot, "dpo", config), format="json")
    assert response.status_code == 201, response.content
    assert TrainingRun.objects.get().config["seed"] == MAX_SEED
    values = config_validate("ppo", {"temperature": 5, "max_new_tokens": MAX_TOKENS, "gamma": 1, "lam": 0})
    assert values["temperature"] == 5.0 and values["max_new_tokens"] == MAX_TOKENS
    values = config_validate("grpo", {"top_p": 1, "use_vllm": True, "vllm_gpu_memory_utilization": 1, "num_generations": 1024})
    assert values["top_p"] == 1.0 and values["num_generations"] == 1024


def test_the_run_form_refuses_nan_and_shows_the_bounds(client_for, project, snapshot, base_model, owner):
    url = f"/training/projects/{project.slug}/new/"
    page = client_for(owner).get(url).content.decode()
    assert "(0.01 to 5.0)" in page  # PPO's temperature, from the recipe's declaration
    for raw in ("nan", "inf", "1e9"):
        response = client_for(owner).post(url, {"snapshot": snapshot.pk, "base_model": base_model.pk, "method": "dpo", "training": "lora",
                                                "dpo-beta": raw})
        page = response.content.decode()
        assert response.status_code == 400 and "beta:" in page, raw
    assert not TrainingRun.objects.exists()


# --- evaluations, generation batches and judges: what the worker would choke on ----------------------------

@pytest.fixture
def models(project, snapshot, base_model):
    policy = ModelArtifact.objects.create(name="policy", kind=ModelArtifact.Kind.POLICY, source=ModelArtifact.Source.TRAINED,
                                          path="models/policy", base_model=base_model, snapshot=snapshot)
    judge = ModelArtifact.objects.create(name="judge", kind=ModelArtifact.Kind.REWARD_MODEL, source=ModelArtifact.Source.TRAINED,
                                         path="models/judge", snapshot=snapshot)
    return policy, judge


@pytest.mark.parametrize("change, field, message", [
    ({"seed": 10**30}, "seed", f"must be 0..{2**63 - 1}"),
    ({"seed": -1}, "seed", "must be 0.."),
    ({"limit": 10**30}, "limit", "must be 1..2000"),
    ({"limit": True}, "limit", "is not a whole number"),
    ({"temperature": "nan"}, "temperature", "is not a number"),
    ({"temperature": "inf"}, "temperature", "is not a number"),
    ({"temperature": True}, "temperature", "is not a number"),
    ({"top_p": [1]}, "top_p", "is not a number"),
])
def test_an_evaluation_refuses_settings_the_worker_cannot_use(models, api_for, owner, change, field, message):
    policy, judge = models
    body = {"reward_model": judge.pk, "prompts": "demo:v1", "limit": 5, **change}
    response = api_for(owner).post(f"/api/training/models/{policy.pk}/evaluations/", body, format="json")
    assert response.status_code == 400, response.content
    assert message in response.json()[field][0]
    assert not Job.objects.exists()


def test_an_evaluation_accepts_the_largest_seed(models, api_for, owner):
    policy, judge = models
    body = {"reward_model": judge.pk, "prompts": "demo:v1", "limit": 2000, "seed": 2**63 - 1}
    response = api_for(owner).post(f"/api/training/models/{policy.pk}/evaluations/", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["params"]["sampling"]["seed"] == 2**63 - 1


@pytest.mark.parametrize("change, field, message", [
    ({"seed": 10**30}, "seed", "must be 0.."),
    ({"limit": 10**30}, "limit", "must be 1..5000"),
    ({"policies": [{"model": "policy", "temperature": "nan"}, {"model": "smol"}]}, "policies[0].temperature", "is not a number"),
    ({"policies": [{"model": "policy", "k": True}, {"model": "smol"}]}, "policies[0].k", "is not a whole number"),
])
def test_a_generation_batch_refuses_settings_the_worker_cannot_use(models, api_for, owner, change, field, message):
    policy, _ = models
    body = {"project": "demo", "prompts": "demo:v1", "limit": 5,
            "policies": [{"model": "policy", "temperature": 0.7}, {"model": "smol", "temperature": 1.0}], **change}
    response = api_for(owner).post(f"/api/training/models/{policy.pk}/generation-batches/", body, format="json")
    assert response.status_code == 400, response.content
    assert message in response.json()[field][0]
    assert not Job.objects.exists()


def test_a_judge_refuses_a_limit_past_31_bits(project, base_model, api_for, owner):
    url = f"/api/training/projects/{project.slug}/judge-jobs/"
    response = api_for(owner).post(url, {"model": "smol", "limit": 10**30}, format="json")
    assert response.status_code == 400 and "limit" in response.json()
    assert not JudgeJob.objects.exists()
    response = api_for(owner).post(url, {"model": "smol", "limit": 2**31 - 1}, format="json")
    assert response.status_code == 201 and response.json()["config"]["limit"] == 2**31 - 1
