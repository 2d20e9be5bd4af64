"""The multi-objective reward model (training/recipes/multi_reward.py): each head learns its own
attribute from an `attributes` snapshot, the model is saved with its heads and default weights,
and every caller of the one scorer combines the heads under the weights it gives, refusing bad ones.

The synthetic attributes depend on different, independent features of a response: `polite` on
the word "thanks", `rude` on the word "whatever", `wordy` on its length (a bucket of its word count)."""
from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from tests.training.conftest import FILLER, TOPICS, build_tokenizer
from training.models import ModelArtifact, TrainingRun
from training.runs.services import run_create

ATTRIBUTES = ("polite", "rude", "wordy")
FAST = {"num_train_epochs": 6, "per_device_train_batch_size": 8, "learning_rate": 2e-2, "max_length": 64, "logging_steps": 5,
        "save_steps": 1000}


def response(rng: random.Random) -> tuple[str, dict]:
    words = [rng.choice(FILLER) for _ in range(rng.randint(1, 8))]
    thanks, whatever = rng.random() < 0.5, rng.random() < 0.5
    for word, on in (("thanks", thanks), ("whatever", whatever)):
        if on:
            words.insert(rng.randint(0, len(words)), word)
    return " " + " ".join(words), {"polite": 4.0 * thanks, "rude": 4.0 * whatever, "wordy": float(min(len(words) // 3, 3))}


def attribute_rows(n_items: int, *, seed: int, per_item: int = 3, nulls: float = 0.1) -> list[dict]:
    """The export contract's rows: prompt, response, each attribute (mean or null) with its count."""
    rng = random.Random(seed)
    rows = []
    for i in range(n_items):
        prompt = f"question about {rng.choice(TOPICS)}"
        for position in range(per_item):
            text, values = response(rng)
            row = {"prompt": prompt, "response": text}
            for a in ATTRIBUTES:
                missing = rng.random() < nulls  # nobody answered this question for this response
                row[a], row[f"{a}_count"] = (None, 0) if missing else (values[a], 2)
            rows.append({**row, "item_id": seed * 100_000 + i, "position": position, "model": "synthetic"})
    return rows


def feature(text: str, attribute: str) -> float:
    words = text.split()
    return {"polite": "thanks" in words, "rude": "whatever" in words, "wordy": min(len(words) // 3, 3)}[attribute]


def build_multi_head_model(folder: Path, *, weights: dict | None = None) -> Path:
    """An untrained 3-head reward model saved as the recipe saves one (random heads: enough for the arithmetic)."""
    import torch

    from tests.tiny_models import tiny_reward_model
    from training.core.heads import heads_write

    tokenizer = build_tokenizer()
    net = tiny_reward_model(tokenizer)
    net.config.num_labels = len(ATTRIBUTES)
    net.score = torch.nn.Linear(net.config.hidden_size, len(ATTRIBUTES), bias=False)
    torch.nn.init.normal_(net.score.weight, std=1.0)
    net.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    heads_write(folder, attributes=list(ATTRIBUTES), weights=weights or {a: 1 / 3 for a in ATTRIBUTES},
                scales={a: [0.0, 4.0] for a in ATTRIBUTES})
    return folder


@pytest.fixture
def multi_rm(settings, snapshot):
    build_multi_head_model(Path(settings.ARTIFACT_ROOT) / "models" / "multi-rm", weights={"polite": 1.0, "rude": -1.0, "wordy": 0.0})
    return ModelArtifact.objects.create(name="multi-rm", kind="reward_model", source="trained", path="models/multi-rm", snapshot=snapshot)


@pytest.fixture
def single_rm(settings, snapshot):
    from tests.training.test_api import build_tiny_reward_model

    build_tiny_reward_model(Path(settings.ARTIFACT_ROOT) / "models" / "tiny-rm")
    return ModelArtifact.objects.create(name="tiny-rm", kind="reward_model", source="trained", path="models/tiny-rm", snapshot=snapshot)


# --- learning --------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.dbless
@pytest.mark.django_db(transaction=True)  # the runner's heartbeat thread has its own connection
def test_it_learns_each_attribute_in_its_own_head(project, owner, tiny_model, make_snapshot, settings):
    from training.core.heads import heads_read
    from training.registry import scoring

    snapshot = make_snapshot(project, attribute_rows(120, seed=1), attribute_rows(40, seed=2), fmt="attributes")
    run = run_create(project=project, snapshot=snapshot, base_model=tiny_model(), method="multi_reward", use_lora=False,
                     config={**FAST, "default_weights": "polite=1, rude=-1"}, created_by=owner)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.SUCCEEDED, run.log_tail
    test = run.result["test"]
    assert test["test_rows"] == 120
    per = test["attributes"]
    for own in ATTRIBUTES:
        f = per[own]
        assert f["n"] >= 90 and f["mae"] is not None and f["mae_ci95"][0] <= f["mae"] <= f["mae_ci95"][1]
        assert f["spearman_ci95"][0] <= f["spearman"] <= f["spearman_ci95"][1]
    # Each head ranks the test responses by its own attribute better than by any other one.
    import torch

    from training.core.scorer import head_scores
    from training.core.stats import spearman

    rm = ModelArtifact.objects.get(run=run)
    root = Path(settings.ARTIFACT_ROOT)
    rows = [json.loads(line) for line in (root / snapshot.path / "attributes" / "test.jsonl").read_text().splitlines()]
    net, tokenizer = scoring._reward_model(rm)
    with torch.no_grad():
        heads = head_scores(net, tokenizer, [r["prompt"] for r in rows], [r["response"] for r in rows]).cpu().tolist()
    for k, own in enumerate(ATTRIBUTES):
        head = [h[k] for h in heads]
        rho = {a: spearman(head, [feature(r["response"], a) for r in rows]) for a in ATTRIBUTES}
        assert rho[own] > 0.6 and all(rho[own] > rho[a] + 0.2 for a in ATTRIBUTES if a != own), (own, rho, run.log_tail[-1500:])
    # Saved with its heads and default weights; the combined score follows them (polite up, rude down).
    saved = heads_read(root / rm.path)
    assert saved["attributes"] == list(ATTRIBUTES) and saved["weights"] == {"polite": 1.0, "rude": -1.0, "wordy": 0.0}
    assert test["accuracy_n"] > 0 and test["accuracy"] >= 0.8, test
    assert rm.metrics["polite_spearman"] == per["polite"]["spearman"]
    # Weight only one head: the ordering follows that attribute.
    texts = [" it is thanks", " it is whatever", " it is", " it thanks whatever"]
    polite = scoring.score(model=rm, prompt="question about rivers", responses=texts, weights={"polite": 1})
    assert min(polite[0], polite[3]) > max(polite[1], polite[2])
    rude = scoring.score(model=rm, prompt="question about rivers", responses=texts, weights={"rude": 1})
    assert min(rude[1], rude[3]) > max(rude[0], rude[2])
    default = scoring.score(model=rm, prompt="question about rivers", responses=texts)
    assert default[0] > default[2] > default[1]  # polite=1, rude=-1


@pytest.mark.slow
@pytest.mark.dbless
@pytest.mark.django_db(transaction=True)
def test_it_saves_a_lora_adapter_with_its_heads_and_scores_with_it(project, owner, tiny_model, make_snapshot, settings):
    from training.core.heads import HEADS_FILE
    from training.registry import scoring

    snapshot = make_snapshot(project, attribute_rows(16, seed=3), attribute_rows(4, seed=4), fmt="attributes")
    config = {**FAST, "num_train_epochs": 1, "pair_loss_weight": 1.0}
    run = run_create(project=project, snapshot=snapshot, base_model=tiny_model(), method="multi_reward", use_lora=True, config=config)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.SUCCEEDED, run.log_tail
    assert run.result["train_pairs"] > 0 and run.result["heads"]["attributes"] == list(ATTRIBUTES)
    rm = ModelArtifact.objects.get(run=run)
    folder = Path(settings.ARTIFACT_ROOT) / rm.path
    assert rm.is_adapter and (folder / "adapter_config.json").exists() and (folder / HEADS_FILE).exists()
    scores = scoring.score(model=rm, prompt="question about rivers", responses=[" thanks", " whatever"], weights={"wordy": 2})
    assert len(scores) == 2


@pytest.mark.slow
@pytest.mark.dbless
@pytest.mark.django_db(transaction=True)
def test_it_fails_in_words_without_attributes_or_with_unknown_default_weights(project, tiny_model, make_snapshot):
    from training.recipes.base import ConfigError

    base = tiny_model()
    empty = run_create(project=project, snapshot=make_snapshot(project, [], []), base_model=base, method="multi_reward", config=FAST)
    empty.refresh_from_db()
    assert empty.status == TrainingRun.Status.FAILED and "attributes/train.jsonl" in empty.error
    snapshot = make_snapshot(project, attribute_rows(4, seed=5), attribute_rows(2, seed=6), fmt="attributes")
    # Refused when the run is created, before it waits in the queue (the worker checks again).
    with pytest.raises(ConfigError, match=r"default_weights\.kind: the snapshot has no attribute 'kind' \(it has polite, rude, wordy\)"):
        run_create(project=project, snapshot=snapshot, base_model=base, method="multi_reward", config={**FAST, "default_weights": "kind=1"})
    with pytest.raises(ConfigError, match="default_weights.polite: 101 is outside -100..100"):
        run_create(project=project, snapshot=snapshot, base_model=base, method="multi_reward", config={"default_weights": {"polite": 101}})


# --- the combined score under weights --------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.dbless
def test_it_combines_the_heads_under_the_weights_given(tmp_path):
    import torch

    from training.core.heads import WeightsError
    from training.core.scorer import head_scores, reward_scores
    from training.rl import models as M

    net, tokenizer = M.load_reward_model(build_multi_head_model(tmp_path / "rm", weights={"polite": 2.0, "rude": 0.5, "wordy": 0.0}))
    prompts, texts = ["question about rivers"] * 3, [" thanks", " whatever it is", " it"]
    heads = head_scores(net, tokenizer, prompts, texts)
    assert heads.shape == (3, 3)
    # None: the saved weights; a dict replaces them whole (attributes left out weigh 0).
    assert torch.allclose(reward_scores(net, tokenizer, prompts, texts), 2.0 * heads[:, 0] + 0.5 * heads[:, 1])
    assert torch.allclose(reward_scores(net, tokenizer, prompts, texts, weights={"wordy": 1.0}), heads[:, 2])
    assert torch.allclose(reward_scores(net, tokenizer, prompts, texts, weights={"polite": 1, "wordy": -3}), heads[:, 0] - 3 * heads[:, 2])
    # The online reward functions go through the same scorer, and refuse a name the model lacks before any rollout.
    assert torch.allclose(M.RewardModel(net, tokenizer, weights={"rude": 1})(prompts, texts), heads[:, 1])
    with pytest.raises(WeightsError, match=r"attribute_weights\.kind: .* has no attribute 'kind'"):
        M.RewardModel(net, tokenizer, weights={"kind": 1})


@pytest.mark.slow
@pytest.mark.dbless
def test_it_refuses_weights_for_a_single_head_model(tmp_path):
    from tests.training.test_api import build_tiny_reward_model
    from training.core.heads import WeightsError
    from training.core.scorer import reward_scores
    from training.rl import models as M

    net, tokenizer = M.load_reward_model(build_tiny_reward_model(tmp_path / "rm"))
    assert reward_scores(net, tokenizer, ["q"], [" thanks"]).shape == (1,)
    with pytest.raises(WeightsError, match="single head"):
        reward_scores(net, tokenizer, ["q"], [" thanks"], weights={"polite": 1})


# --- the score endpoint ----------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.django_db
def test_it_scores_with_weights_over_the_api(api_for, multi_rm, owner, researcher, member, outsider):
    from training.core.scorer import head_scores
    from training.registry import loading

    url = f"/api/training/models/{multi_rm.pk}/score/"
    body = {"prompt": "question about apples", "responses": [" thanks", " whatever it is"]}
    net, tokenizer = loading.reward_model_loaded(multi_rm)
    heads = head_scores(net, tokenizer, [body["prompt"]] * 2, body["responses"]).cpu().tolist()
    for user in (owner, researcher):
        default = api_for(user).post(url, body, format="json")
        assert default.status_code == 200, default.content
        assert default.json()["scores"] == pytest.approx([h[0] - h[1] for h in heads], abs=1e-5)  # the saved weights
        weighted = api_for(user).post(url, {**body, "weights": {"wordy": 2, "polite": 0.5}}, format="json")
        assert weighted.json()["scores"] == pytest.approx([2 * h[2] + 0.5 * h[0] for h in heads], abs=1e-5)
    assert api_for(member).post(url, {**body, "weights": {"wordy": 1}}, format="json").status_code == 403
    assert api_for(outsider).post(url, {**body, "weights": {"wordy": 1}}, format="json").status_code == 404


@pytest.mark.slow
@pytest.mark.django_db
def test_it_refuses_bad_weights_naming_the_field(api_for, multi_rm, single_rm, researcher):
    body = {"prompt": "question about apples", "responses": [" thanks"]}
    def post(model, weights):
        # Raw JSON: the test client would refuse to encode an infinity, but a body may carry 1e999.
        raw = json.dumps({**body, "weights": weights}).replace("Infinity", "1e999")
        return api_for(researcher).post(f"/api/training/models/{model.pk}/score/", raw, content_type="application/json")

    cases = [
        ({"kind": 1}, "weights.kind", "has no attribute 'kind'"),  # checked on the worker, against the heads
        ({"polite": float("inf")}, "weights.polite", "not a finite number"),  # the API parser refuses it first
        ({"polite": 1000}, "weights", "outside -100..100"),
        ({"polite": "lots"}, "weights", "not a number"),
        ({"polite": True}, "weights", "not a number"),
        ({"Polite!": 1}, "weights", "not an attribute name"),
        ([1, 2], "weights", "an object of attribute name to weight"),
    ]
    for weights, field, message in cases:
        response = post(multi_rm, weights)
        assert response.status_code == 400 and message in str(response.json().get(field)), (weights, response.json())
    single = post(single_rm, {"polite": 1})
    assert single.status_code == 400 and "single head" in str(single.json()["weights"])
    assert post(single_rm, None).status_code == 200  # no weights: a single-head model scores as before


# --- runs and evaluations ---------------------------------------------------------------------------

@pytest.mark.django_db
def test_it_bounds_attribute_weights_in_online_run_configs(project, snapshot, base_model, multi_rm, single_rm, owner):
    from training.recipes.base import ConfigError, config_schema, config_validate

    for method in ("ppo", "rloo", "grpo"):
        assert config_validate(method, {"attribute_weights": {"polite": 1, "rude": -0.5}})["attribute_weights"] == "polite=1, rude=-0.5"
        row = next(r for r in config_schema(method) if r["name"] == "attribute_weights")
        assert row["weights"] and row["minimum"] == -100 and row["maximum"] == 100
    for bad, message in (("polite=200", "attribute_weights.polite: 200 is outside"), ("polite", "is not name=weight"),
                         ({"polite": float("nan")}, "not a finite number")):
        with pytest.raises(ConfigError, match=message):
            config_validate("grpo", {"attribute_weights": bad})
    ok = dict(project=project, snapshot=snapshot, base_model=base_model, method="grpo", created_by=owner)
    with pytest.raises(ConfigError, match=r"attribute_weights\.kind: the reward model multi-rm has no attribute 'kind'"):
        run_create(**ok, reward_model=multi_rm, config={"attribute_weights": "kind=1"})
    with pytest.raises(ConfigError, match="attribute_weights: the reward model tiny-rm has a single head"):
        run_create(**ok, reward_model=single_rm, config={"attribute_weights": "polite=1"})
    run = run_create(**ok, reward_model=multi_rm, config={"attribute_weights": {"polite": 1, "wordy": 0.5}})
    assert run.config["attribute_weights"] == "polite=1, wordy=0.5"


@pytest.mark.django_db
def test_it_checks_evaluation_weights_against_the_judge(project, snapshot, multi_rm, settings):
    from training.loop.evaluation import evaluation_create
    from training.loop.generation import GenerationError

    policy = ModelArtifact.objects.create(name="pol", kind="policy", source="trained", path="models/pol")
    reference = ModelArtifact.objects.create(name="ref", kind="causal_lm", source="local", path="models/ref")
    args = dict(policy=policy, reference=reference, reward_model=multi_rm, project=project, snapshot=snapshot)
    with pytest.raises(GenerationError, match=r"reward_weights\.kind: multi-rm has no attribute 'kind'"):
        evaluation_create(**args, reward_weights={"kind": 1})
    with pytest.raises(GenerationError, match="reward_weights.polite: 500 is outside"):
        evaluation_create(**args, reward_weights="polite=500")
    job = evaluation_create(**args, reward_weights={"rude": 1})
    assert job.params["reward_weights"] == {"rude": 1.0}


@pytest.mark.dbless
def test_it_computes_rank_correlation_and_intervals_by_hand():
    from training.core.stats import mean_interval, ranks, spearman, spearman_interval, t_quantile

    assert ranks([10, 20, 20, 5]) == [2.0, 3.5, 3.5, 1.0]
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 1], [1, 2, 3]) is None  # a constant ranks nothing
    # rho 0.5 on 28 pairs: z = atanh(0.5) = 0.5493, half-width 1.96 * sqrt(1.06 / 25) = 0.4036.
    lo, hi = spearman_interval(0.5, 28)
    assert lo == pytest.approx(math.tanh(0.5493 - 0.4036), abs=1e-3) and hi == pytest.approx(math.tanh(0.5493 + 0.4036), abs=1e-3)
    assert t_quantile(0.975, 10) == pytest.approx(2.2281, abs=1e-4)  # Student's table
    lo, hi = mean_interval([1.0, 2.0, 3.0])  # mean 2, sd 1, t(0.975, 2) = 4.303: 2 ± 2.484
    assert lo == pytest.approx(2 - 2.484, abs=0.05) and hi == pytest.approx(2 + 2.484, abs=0.05)


@pytest.mark.slow
@pytest.mark.dbless
def test_it_leaves_null_attributes_out_of_the_loss(tmp_path):
    import torch

    from training.recipes.multi_reward import collate, normalised, trainer_class
    from training.rl import models as M

    net, tokenizer = M.load_reward_model(build_multi_head_model(tmp_path / "rm"))
    targets, present = normalised({"polite": 4.0, "rude": None, "wordy": 2.0}, list(ATTRIBUTES), {a: [0.0, 4.0] for a in ATTRIBUTES})
    assert (targets, present) == ([1.0, 0.0, 0.5], [1.0, 0.0, 1.0])
    ids = tokenizer(" it is thanks")["input_ids"]

    def loss(rude_target: float, polite_target: float = 1.0) -> float:
        item = {"ids": [ids], "targets": [[polite_target, rude_target, 0.5]], "present": [present], "pairs": []}
        # compute_loss reads nothing of the trainer but the loss settings it was built with.
        return float(trainer_class(weights=[1.0, 0.0, 0.0], pair_loss_weight=0.0).compute_loss(None, net, collate([item], pad_id=0)))

    with torch.no_grad():
        assert loss(0.0) == loss(1.0)  # a null teaches its head nothing, whatever stands in its place
        assert loss(0.0, polite_target=0.0) != loss(0.0)
