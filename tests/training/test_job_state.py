"""Every job page says where the job stands: its place in line while queued (counted in the
database among the queued jobs of its queue), its phase while running (loading, training,
evaluating, saving), and the time left from the steps done. Never "0 / ? steps" for a queued job.
The evaluation after a policy run is optional, and the run page says where it is."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from training.judge.models import JudgeJob
from training.loop.models import Job
from training.models import ModelArtifact, TrainingRun
from training.runs import lifecycle

pytestmark = pytest.mark.django_db


@pytest.fixture
def make_run(project, snapshot, base_model, owner):
    def make(**fields) -> TrainingRun:
        fields = {"method": "dpo", **fields}
        return TrainingRun.objects.create(project=project, snapshot=snapshot, base_model=base_model, created_by=owner, **fields)

    return make


@pytest.fixture
def policy(base_model, snapshot):
    return ModelArtifact.objects.create(name="smol-dpo", kind=ModelArtifact.Kind.POLICY, source=ModelArtifact.Source.TRAINED,
                                        path="models/smol-dpo", base_model=base_model, snapshot=snapshot)


def _page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_it_shows_a_queued_runs_place_in_line_not_a_step_counter(client_for, owner, make_run, policy, project):
    running = make_run(status=lifecycle.Status.RUNNING, started_at=timezone.now())
    first, second, third = (make_run() for _ in range(3))
    # A queued job of the jobs queue is not ahead of a training run: it has a worker of its own.
    Job.objects.create(kind=Job.Kind.EVALUATION, policy=policy, project=project)
    first.created_at = second.created_at - timedelta(seconds=1)  # created earlier: it goes first whatever its id
    first.save(update_fields=["created_at"])
    client = client_for(owner)
    page = _page(client, f"/training/runs/{third.pk}/")
    assert "queued, 3rd in line on the gpu queue" in page
    assert "0 / ? steps" not in page and "0/0" not in page
    assert "queued, next in line on the gpu queue" in _page(client, f"/training/runs/{first.pk}/")
    # The page polls metrics.json: it carries the same words while the run waits.
    assert client.get(f"/training/runs/{second.pk}/metrics.json").json()["state"]["line"] == "queued, 2nd in line on the gpu queue"
    assert "queued" not in _page(client, f"/training/runs/{running.pk}/").split('data-field="steps">')[1].split("<")[0]
    first.status = lifecycle.Status.CANCELLED
    first.save(update_fields=["status"])
    assert "queued, 2nd in line on the gpu queue" in _page(client, f"/training/runs/{third.pk}/")


def test_it_shows_the_phase_and_the_time_left_of_a_running_run(client_for, owner, make_run):
    now = timezone.now()
    training = make_run(status=lifecycle.Status.RUNNING, phase="training", step=40, total_steps=100, started_at=now - timedelta(minutes=4))
    page = _page(client_for(owner), f"/training/runs/{training.pk}/")
    # 4 min for 40 steps, 60 left: about 6 min.
    assert "training · 40 / 100 steps (40%) · about 6 min left" in page
    evaluating = make_run(status=lifecycle.Status.RUNNING, phase="evaluating", step=4, total_steps=4, started_at=now - timedelta(minutes=9))
    page = _page(client_for(owner), f"/training/runs/{evaluating.pk}/")
    assert "evaluating · 4 / 4 steps (100%)" in page and "left" not in page.split('data-field="steps">')[1].split("<")[0]


def test_it_records_the_phase_as_the_worker_goes(make_run):
    """The runner's Progress writes the phase with the step counter: training until the last step,
    evaluating after it (a KTO run sat at 4/4 for 9 minutes while it evaluated), saving at the end."""
    from training.runs.runner import Progress

    run = make_run()
    attempt = lifecycle.claim(TrainingRun, pk=run.pk, worker_name="gpu@test")
    run.refresh_from_db()
    assert run.phase == "loading"
    progress = Progress(run, attempt=attempt, worker="gpu@test", beat=False)
    progress.steps(step=0, total=4)
    run.refresh_from_db()
    assert run.phase == "training"
    progress.metrics({"step": 2, "loss": 0.6})
    assert TrainingRun.objects.get(pk=run.pk).phase == "training"
    progress.metrics({"step": 4, "loss": 0.5})
    assert TrainingRun.objects.get(pk=run.pk).phase == "evaluating"
    progress.say("succeeded", step=4, phase="saving")
    assert TrainingRun.objects.get(pk=run.pk).phase == "saving"


def test_it_counts_judge_and_evaluation_jobs_in_one_jobs_queue(client_for, owner, project, policy, base_model, make_run):
    make_run()  # a queued training run waits on gpu: it is not ahead of anything here
    judge = JudgeJob.objects.create(project=project, model=base_model, created_by=owner)
    evaluation = Job.objects.create(kind=Job.Kind.EVALUATION, policy=policy, project=project, params={"prompts": {"label": "demo v1 test"}})
    client = client_for(owner)
    page = _page(client, f"/training/jobs/{evaluation.pk}/")
    assert "queued, 2nd in line on the jobs queue" in page and "0/0" not in page
    assert "queued, next in line on the jobs queue" in _page(client, f"/training/projects/{project.slug}/judge/")
    Job.objects.filter(pk=evaluation.pk).update(status=lifecycle.Status.RUNNING, phase="evaluating", done=30, total=60,
                                                started_at=timezone.now() - timedelta(minutes=2))
    assert "evaluating · 30 / 60 steps (50%) · about 2 min left" in _page(client, f"/training/jobs/{evaluation.pk}/")
    JudgeJob.objects.filter(pk=judge.pk).update(status=lifecycle.Status.RUNNING, phase="judging", done=0, total=10)
    assert "judging · 0 / 10 items (0%)" in _page(client, f"/training/projects/{project.slug}/judge/")


def test_it_says_on_the_run_page_where_its_evaluation_is(client_for, owner, make_run, policy, project):
    client = client_for(owner)
    off = make_run(evaluate_after=False, status=lifecycle.Status.SUCCEEDED)
    assert "No evaluation after this run" in _page(client, f"/training/runs/{off.pk}/")
    on = make_run(status=lifecycle.Status.RUNNING)
    assert "When it finishes, an evaluation against smol is queued on the jobs queue" in _page(client, f"/training/runs/{on.pk}/")
    job = Job.objects.create(kind=Job.Kind.EVALUATION, policy=policy, project=project, run=on)
    page = _page(client, f"/training/runs/{on.pk}/")
    assert f'href="/training/jobs/{job.pk}/">#{job.pk}</a>, queued, next in line on the jobs queue' in page


def test_it_queues_the_evaluation_only_when_the_run_asked_for_it(make_run, policy, snapshot, django_capture_on_commit_callbacks):
    from training.runs.runner import _evaluate_after

    ModelArtifact.objects.create(name="rm", kind=ModelArtifact.Kind.REWARD_MODEL, source=ModelArtifact.Source.TRAINED,
                                 path="models/rm", snapshot=snapshot)
    skipped = make_run(evaluate_after=False, status=lifecycle.Status.SUCCEEDED)
    ModelArtifact.objects.filter(pk=policy.pk).update(run=skipped)
    _evaluate_after(skipped)
    assert not Job.objects.exists()
    wanted = make_run(status=lifecycle.Status.SUCCEEDED)
    ModelArtifact.objects.filter(pk=policy.pk).update(run=wanted)
    _evaluate_after(wanted)
    assert list(Job.objects.values_list("run_id", "kind", "status")) == [(wanted.pk, "evaluation", "queued")]


def test_it_offers_the_evaluation_as_a_checkbox_and_keeps_it_off_when_unticked(client_for, owner, project, snapshot, base_model):
    client = client_for(owner)
    page = _page(client, f"/training/projects/{project.slug}/new/")
    box = re.search(r'<input[^>]*name="evaluate_after"[^>]*>', page)
    assert box and "checked" in box.group(0)  # on unless the manager unticks it, as before
    body = {"snapshot": snapshot.pk, "base_model": base_model.pk, "method": "dpo", "training": "lora", "num_processes": 1, "distributed": "ddp"}
    assert client.post(f"/training/projects/{project.slug}/new/", body).status_code == 302
    assert client.post(f"/training/projects/{project.slug}/new/", {**body, "evaluate_after": "on"}).status_code == 302
    assert list(TrainingRun.objects.order_by("pk").values_list("evaluate_after", flat=True)) == [False, True]


def test_it_links_an_empty_registry_to_the_register_page(client_for, owner, project, snapshot):
    page = _page(client_for(owner), f"/training/projects/{project.slug}/new/")
    assert 'The model registry is empty. <a href="/training/models/add/">Models → Register a model</a>' in page
