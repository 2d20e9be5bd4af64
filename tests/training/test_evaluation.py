import math

import pytest
from django.core.management import CommandError, call_command

from tests.training.conftest import preference_rows
from tests.training.loop_fixtures import tiny_reward  # noqa: F401
from training.evaluation import evaluate_after_run, evaluation_create, wilson_interval, win_rate
from training.generation import GenerationError, Sampling
from training.job_models import Job
from training.models import ModelArtifact, TrainingRun


def test_it_computes_the_wilson_interval_as_published():
    # Wilson (1927) / Newcombe (1998) example: 81 successes out of 263 -> 0.2553 .. 0.3662.
    lo, hi = wilson_interval(81, 263)
    assert math.isclose(lo, 0.2553, abs_tol=5e-4) and math.isclose(hi, 0.3662, abs_tol=5e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert wilson_interval(10, 10)[0] == pytest.approx(0.7225, abs=5e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_it_counts_a_tie_as_half_a_win():
    r = win_rate([1.0, 2.0, 0.0, 5.0], [0.0, 2.0 + 1e-9, 1.0, 4.0])  # a float-noise difference is a tie
    assert (r["n"], r["wins"], r["ties"], r["losses"]) == (4, 2, 1, 1)
    assert r["win_rate"] == pytest.approx(2.5 / 4)
    assert r["ci_low"] < r["win_rate"] < r["ci_high"]


@pytest.fixture
def setup(project, tiny_model, tiny_reward, make_snapshot):
    base = tiny_model("tiny-base", seed=0)
    other = tiny_model("tiny-other", seed=3)
    policy = ModelArtifact.objects.create(name="tiny-policy", kind=ModelArtifact.Kind.POLICY, source=ModelArtifact.Source.TRAINED,
                                          path=other.path, base_model=base)
    snapshot = make_snapshot(project, preference_rows(8, seed=0), preference_rows(12, seed=1))
    return base, policy, tiny_reward(), snapshot


@pytest.mark.slow
def test_it_evaluates_a_policy_against_its_reference(setup, project, owner, django_capture_on_commit_callbacks):
    base, policy, judge, snapshot = setup
    with django_capture_on_commit_callbacks(execute=True):
        job = evaluation_create(policy=policy, reference=None, reward_model=judge, project=project, snapshot=snapshot,
                                sampling=Sampling(temperature=1.0, max_new_tokens=8), created_by=owner)
    job.refresh_from_db()  # the task ran inline (eager Celery in tests)
    assert job.status == Job.Status.SUCCEEDED, job.error
    r = job.result
    distinct = len({row["prompt"] for row in preference_rows(12, seed=1)})
    assert r["n"] == distinct == len(r["samples"]) and job.done == job.total
    assert r["wins"] + r["ties"] + r["losses"] == r["n"]
    assert 0 <= r["ci_low"] <= r["win_rate"] <= r["ci_high"] <= 1
    # Two different random networks: their answers differ, so KL to the reference is positive.
    assert r["kl_mean"] > 0
    assert 0 < r["policy_length_mean"] <= 8
    assert r["reference"] == "tiny-base" and r["reward_model"] == "tiny-rm"
    sample = r["samples"][0]
    assert sample["winner"] in ("policy", "reference", "tie") and "policy_score" in sample


@pytest.mark.slow
def test_it_finds_no_kl_between_a_policy_and_itself_through_another_name(setup, project, django_capture_on_commit_callbacks):
    base, policy, judge, snapshot = setup
    twin = ModelArtifact.objects.create(name="twin", kind=ModelArtifact.Kind.CAUSAL_LM, source=ModelArtifact.Source.LOCAL, path=base.path)
    with django_capture_on_commit_callbacks(execute=True):
        job = evaluation_create(policy=twin, reference=base, reward_model=judge, project=project, snapshot=snapshot,
                                sampling=Sampling(temperature=1.0, max_new_tokens=6), limit=4)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.result["kl_mean"] == pytest.approx(0.0, abs=1e-4)
    # Same weights, same seed: the same answers, every pair a tie.
    assert job.result["ties"] == job.result["n"] == 4 and job.result["win_rate"] == 0.5


def test_it_refuses_a_judge_that_is_not_a_reward_model(setup, project):
    base, policy, judge, snapshot = setup
    with pytest.raises(GenerationError, match="reward_model: tiny-base is a causal"):
        evaluation_create(policy=policy, reference=None, reward_model=base, project=project, snapshot=snapshot)
    with pytest.raises(GenerationError, match="reference: a policy compared with itself"):
        evaluation_create(policy=policy, reference=policy, reward_model=judge, project=project, snapshot=snapshot)
    assert not Job.objects.exists()


def test_it_queues_nothing_after_a_run_without_a_judge(setup, project):
    base, policy, judge, snapshot = setup
    run = TrainingRun.objects.create(project=project, snapshot=snapshot, base_model=base, method="dpo", status="succeeded")
    policy.run = run
    policy.save()
    assert evaluate_after_run(run) is None
    run.config = {"eval_reward_model": "tiny-rm"}
    run.save()
    job = evaluate_after_run(run)  # queued after commit; the test transaction never commits
    assert job.kind == Job.Kind.EVALUATION and job.run == run and job.params["reference"] == base.pk
    assert job.params["prompts"]["snapshot"] == snapshot.pk and job.params["prompts"]["split"] == "test"


def test_it_names_bad_command_arguments(setup):
    with pytest.raises(CommandError, match="--policy: no registered model 'nope'"):
        call_command("evaluate_policy", "--policy", "nope", "--reward-model", "tiny-rm", "--prompts", "demo:v1")
    with pytest.raises(CommandError, match="--prompts: project demo has no ready snapshot 'v9'"):
        call_command("evaluate_policy", "--policy", "tiny-policy", "--reward-model", "tiny-rm", "--prompts", "demo:v9")


@pytest.mark.slow
def test_it_evaluates_from_the_command_line(setup, capsys):
    from io import StringIO

    out = StringIO()
    call_command("evaluate_policy", "--policy", "tiny-policy", "--reward-model", "tiny-rm", "--prompts", "demo:latest",
                 "--limit", "3", "--max-new-tokens", "4", "--here", stdout=out)
    assert "RM win rate of tiny-policy over tiny-base" in out.getvalue() and "n=3" in out.getvalue()
