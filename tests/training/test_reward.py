"""Reward-model runs, in process on CPU: the model learns a rule from a snapshot, is registered
with its lineage, and scores new responses."""
from __future__ import annotations

import pytest

from tests.training.conftest import preference_rows
from training.models import ModelArtifact, TrainingRun
from training.runs.runner import run_execute
from training.runs.services import run_create

# transaction=True: the runner's heartbeat thread has its own connection and must see committed rows.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

FAST = {"num_train_epochs": 2, "per_device_train_batch_size": 16, "learning_rate": 1e-2, "max_length": 64, "logging_steps": 4, "save_steps": 1000}


@pytest.mark.dbless
@pytest.mark.parametrize("use_lora", [True, False], ids=["lora", "full"])
def test_it_learns_that_polite_answers_are_preferred(project, owner, tiny_model, make_snapshot, use_lora):
    base = tiny_model(hidden=32)
    snapshot = make_snapshot(project, preference_rows(160, seed=1), preference_rows(40, seed=2))
    run = run_create(project=project, snapshot=snapshot, base_model=base, method="reward", use_lora=use_lora, config=FAST, created_by=owner)
    # Celery runs eagerly in tests: the task ran when run_create's transaction committed. A second
    # delivery of the same message finds the run finished and does nothing.
    assert run_execute(run_id=run.pk, worker_name="a-second-delivery") == "skipped"

    run.refresh_from_db()
    assert run.status == TrainingRun.Status.SUCCEEDED, run.log_tail
    assert run.attempts == 1 and run.worker != "a-second-delivery" and run.device.startswith("cpu")
    assert run.step == run.total_steps == 20
    test = run.result["test"]
    assert test["test_pairs"] == 40
    assert test["accuracy"] >= 0.85, run.log_tail
    assert test["margin"]["mean"] > 0 and sum(test["margin"]["histogram"]["counts"]) == 40
    # The loss curve went down: the metrics over time are on the row for the page's chart.
    losses = [m["loss"] for m in run.metrics]
    assert len(losses) >= 5 and losses[-1] < losses[0]
    assert {"step", "loss", "accuracy", "learning_rate"} <= set(run.metrics[-1])

    model = ModelArtifact.objects.get(run=run)
    assert model.kind == ModelArtifact.Kind.REWARD_MODEL and model.source == ModelArtifact.Source.TRAINED
    assert model.base_model == base and model.snapshot == snapshot and model.is_adapter == use_lora
    assert model.config["learning_rate"] == 1e-2 and model.metrics["accuracy"] == test["accuracy"]


@pytest.mark.dbless
def test_it_scores_new_responses_with_the_trained_reward_model(project, tiny_model, make_snapshot):
    from training.registry import loading, scoring

    base = tiny_model()
    snapshot = make_snapshot(project, preference_rows(160, seed=3), preference_rows(20, seed=4))
    run = run_create(project=project, snapshot=snapshot, base_model=base, method="reward", use_lora=True, config=FAST)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.SUCCEEDED, run.log_tail
    rm = ModelArtifact.objects.get(run=run)

    polite, rude = scoring.score(model=rm, prompt="question about rivers", responses=[" you can thanks it", " you can whatever it"])
    assert polite > rude
    # Cached: a second call does not load the weights again.
    loaded = loading.reward_model_loaded(rm)
    assert loading.reward_model_loaded(rm) is loaded
    with pytest.raises(scoring.ScoringError):
        scoring.score(model=base, prompt="q", responses=["a"])


@pytest.mark.dbless
def test_it_uses_the_margin_column_when_asked(project, tiny_model, make_snapshot):
    base = tiny_model()
    snapshot = make_snapshot(project, preference_rows(64, seed=5, margin=True), preference_rows(16, seed=6, margin=True))
    config = {**FAST, "num_train_epochs": 1, "use_margin": True}
    run = run_create(project=project, snapshot=snapshot, base_model=base, method="reward", use_lora=False, config=config)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.SUCCEEDED, run.log_tail
    assert run.result["resolved_config"]["use_margin"] is True and run.result["test"]["test_pairs"] == 16


@pytest.mark.dbless
def test_it_fails_in_words_when_the_snapshot_has_no_pairs(project, tiny_model, make_snapshot):
    base = tiny_model()
    snapshot = make_snapshot(project, [], [])
    run = run_create(project=project, snapshot=snapshot, base_model=base, method="reward", config=FAST)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED
    assert "preference/train.jsonl" in run.error and "no preference pairs" in run.error
    assert "no preference pairs" in run.log_tail and run.finished_at is not None
    assert not ModelArtifact.objects.filter(run=run).exists()


def test_it_learns_from_a_snapshot_built_from_raters_judgments(project, member, tiny_model):
    """The whole path: judgments -> the real snapshot exporter -> a reward run on its files."""
    import random

    from annotation.exports import snapshot_create
    from annotation.exports.build import snapshot_build
    from annotation.models import Candidate, Item, Judgment

    rng = random.Random(7)
    for i, row in enumerate(preference_rows(200, seed=8)):
        item = Item.objects.create(project=project, external_id=f"p-{i:04d}", prompt=row["prompt"])
        polite_first = rng.random() < 0.5
        texts = [row["chosen"].strip(), row["rejected"].strip()] if polite_first else [row["rejected"].strip(), row["chosen"].strip()]
        Candidate.objects.bulk_create([Candidate(item=item, position=p, text=t) for p, t in enumerate(texts)])
        Judgment.objects.create(project=project, item=item, rater=member, kind=project.kind, value={"winner": 0 if polite_first else 1})
    snapshot = snapshot_build(snapshot_id=snapshot_create(project=project, options={"test_share": 0.2}, enqueue=False).id)
    assert snapshot.status == "ready", snapshot.error

    run = run_create(project=project, snapshot=snapshot, base_model=tiny_model(), method="reward", use_lora=False, config=FAST)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.SUCCEEDED, run.log_tail
    assert 20 <= run.result["test"]["test_pairs"] <= 60 and run.result["test"]["accuracy"] >= 0.8, run.log_tail
    assert ModelArtifact.objects.get(run=run).snapshot == snapshot
