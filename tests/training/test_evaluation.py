import math

import pytest
from django.core.management import CommandError, call_command

from tests.training.conftest import preference_rows
from tests.training.loop_fixtures import tiny_reward  # noqa: F401
from training.loop.evaluation import evaluate_after_run, evaluation_create
from training.loop.generation import GenerationError, Sampling
from training.loop.models import Job
from training.models import ModelArtifact, TrainingRun
from training.core.stats import wilson, win_rate


def test_it_computes_the_wilson_interval_as_published():
    # Wilson (1927) / Newcombe (1998) example: 81 successes out of 263 -> 0.2553 .. 0.3662.
    lo, hi = wilson(81, 263)
    assert math.isclose(lo, 0.2553, abs_tol=5e-4) and math.isclose(hi, 0.3662, abs_tol=5e-4)
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == pytest.approx(1.0)
    assert wilson(10, 10)[0] == pytest.approx(0.7225, abs=5e-4)
    assert wilson(0, 0) == (0.0, 1.0)


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


@pytest.mark.slow
def test_it_finds_no_kl_and_an_even_match_between_a_fresh_lora_policy_and_its_base(setup, project, settings, django_capture_on_commit_callbacks):
    from pathlib import Path

    from tests.training.conftest import build_tokenizer
    from training.core.paths import artifact_path
    from training.rl.models import load_policy, with_lora

    base, _, judge, snapshot = setup
    folder = Path(settings.ARTIFACT_ROOT) / "models" / "tiny-lora"
    # A fresh adapter (LoRA's B starts at zero): the policy is its base, whatever the adapter holds.
    with_lora(load_policy(artifact_path(base.path)), task_type="CAUSAL_LM", r=4, alpha=8, dropout=0.0).save_pretrained(folder)
    build_tokenizer().save_pretrained(folder)
    lora = ModelArtifact.objects.create(name="tiny-lora", kind=ModelArtifact.Kind.POLICY, source=ModelArtifact.Source.TRAINED,
                                        path="models/tiny-lora", base_model=base, is_adapter=True)
    with django_capture_on_commit_callbacks(execute=True):
        job = evaluation_create(policy=lora, reference=None, reward_model=judge, project=project, snapshot=snapshot,
                                sampling=Sampling(temperature=1.0, max_new_tokens=6), limit=6)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    r = job.result
    assert r["reference"] == "tiny-base" and r["n"] == 6
    assert r["kl_mean"] == pytest.approx(0.0, abs=1e-4)
    assert r["ci_low"] < 0.5 < r["ci_high"] and r["win_rate"] == 0.5


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


# --- the page and the API: owner (manager), member (rater), outsider ---------------------------

@pytest.fixture
def owned_policy(setup):
    base, policy, judge, snapshot = setup
    policy.snapshot = snapshot  # a model trained on the project's data belongs to the project
    policy.save()
    return policy, judge, snapshot


@pytest.mark.parametrize("who, code", [("owner", 201), ("member", 403), ("outsider", 404)])
def test_it_lets_only_a_manager_queue_an_evaluation_over_the_api(owned_policy, api_for, request, who, code):
    policy, judge, snapshot = owned_policy
    res = api_for(request.getfixturevalue(who)).post(f"/api/training/models/{policy.pk}/evaluations/",
                                                     {"reward_model": judge.pk, "prompts": "demo:v1", "limit": 5}, format="json")
    assert res.status_code == code, res.content
    assert Job.objects.count() == (1 if code == 201 else 0)
    if code == 201:
        body = res.json()
        assert body["status"] == "queued" and body["kind"] == "evaluation" and body["params"]["limit"] == 5


def test_it_names_the_bad_field_over_the_api(owned_policy, api_for, owner):
    policy, judge, snapshot = owned_policy
    res = api_for(owner).post(f"/api/training/models/{policy.pk}/evaluations/", {"reward_model": policy.pk, "prompts": "demo:v1"}, format="json")
    assert res.status_code == 400 and "not a reward model" in res.json()["reward_model"][0]
    res = api_for(owner).post(f"/api/training/models/{policy.pk}/evaluations/", {"reward_model": judge.pk, "prompts": "demo:v1", "limit": "many"}, format="json")
    assert res.status_code == 400 and "limit" in res.json()
    assert not Job.objects.exists()


@pytest.mark.parametrize("who, code", [("owner", 200), ("member", 403), ("outsider", 404)])
def test_it_shows_an_evaluation_to_researchers_and_managers_only(owned_policy, project, client_for, api_for, request, who, code):
    policy, judge, snapshot = owned_policy
    job = Job.objects.create(kind=Job.Kind.EVALUATION, policy=policy, project=project, status=Job.Status.SUCCEEDED, params={"prompts": {"label": "demo v1"}},
                             result={"n": 2, "wins": 1, "ties": 1, "losses": 0, "win_rate": 0.75, "ci_low": 0.3, "ci_high": 0.95, "kl_mean": 0.12,
                                     "policy_length_mean": 7.0, "reference_length_mean": 5.0, "policy": "tiny-policy", "reference": "tiny-base",
                                     "reward_model": "tiny-rm", "samples": [{"prompt": "question about apples", "policy": "thanks a lot",
                                                                             "reference": "go away", "policy_score": 1.0, "reference_score": -1.0, "winner": "policy"}]})
    user = request.getfixturevalue(who)
    page = client_for(user).get(f"/training/jobs/{job.pk}/")
    assert page.status_code == code
    assert api_for(user).get(f"/api/training/jobs/{job.pk}/").status_code == code
    if code == 200:
        html = page.content.decode()
        assert "0.750" in html and "n=2" in html and "thanks a lot" in html and "go away" in html
        model_page = client_for(user).get(f"/training/models/{policy.pk}/").content.decode()
        assert "RM win rate over tiny-base" in model_page and "Queue evaluation" in model_page


def test_it_queues_an_evaluation_from_the_policys_page(owned_policy, client_for, owner, member):
    policy, judge, snapshot = owned_policy
    data = {"reward_model": judge.pk, "prompts": "demo:v1", "limit": 4, "temperature": 0.5, "max_new_tokens": 8}
    assert client_for(member).post(f"/training/models/{policy.pk}/evaluate/", data).status_code == 403
    res = client_for(owner).post(f"/training/models/{policy.pk}/evaluate/", data)
    job = Job.objects.get()
    assert res.status_code == 302 and res["Location"] == f"/training/jobs/{job.pk}/"
    assert job.params["sampling"]["temperature"] == 0.5 and job.created_by == owner


@pytest.mark.parametrize("who, code", [("owner", 200), ("member", 403), ("outsider", 404)])
def test_it_lets_only_a_manager_cancel_a_job(owned_policy, project, api_for, request, who, code):
    policy, judge, snapshot = owned_policy
    job = Job.objects.create(kind=Job.Kind.EVALUATION, policy=policy, project=project)
    res = api_for(request.getfixturevalue(who)).post(f"/api/training/jobs/{job.pk}/cancel/")
    assert res.status_code == code
    job.refresh_from_db()
    assert job.status == (Job.Status.CANCELLED if code == 200 else Job.Status.QUEUED)


def test_it_requeues_a_silent_job_and_fails_it_after_its_attempts(owned_policy, project, settings, django_capture_on_commit_callbacks):
    # An evaluation whose gpu worker died must not stay "running" forever (training/runs/lifecycle.py).
    from datetime import timedelta

    from django.utils import timezone

    from training.loop.jobs import JobProgress, jobs_find_stale
    from training.runs.lifecycle import Lost, claim

    policy, judge, snapshot = owned_policy
    job = Job.objects.create(kind=Job.Kind.EVALUATION, policy=policy, project=project)
    assert claim(Job, pk=job.pk, worker_name="w1") == 1
    assert claim(Job, pk=job.pk, worker_name="w2") is None  # alive: nobody else takes it
    old = timezone.now() - timedelta(seconds=settings.ARBITER_RUN_STALE_SECONDS + 5)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=old)
    with django_capture_on_commit_callbacks() as queued:
        assert jobs_find_stale() == [job.pk]
    assert len(queued) == 1
    assert claim(Job, pk=job.pk, worker_name="w2") == 2
    with pytest.raises(Lost):  # the first worker, back to life, writes nothing any more
        JobProgress(job, attempt=1, worker="w1").step(done=1)
    Job.objects.filter(pk=job.pk).update(attempts=3, heartbeat_at=old)
    assert jobs_find_stale() == []
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and job.finished_at is not None
    assert "worker w2 stopped sending heartbeats" in job.error and "all 3 attempts" in job.error
