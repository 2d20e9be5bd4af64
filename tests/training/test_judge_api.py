"""The AI judge's page, API and command, for every role: managers start, cancel and resume jobs
and edit the constitution; researchers read; raters get 403 and outsiders 404."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from annotation.kinds import Kind
from training.judge.services import judge_job_create
from training.models import JudgeJob, ModelArtifact

pytestmark = pytest.mark.django_db

ROLES = [("owner", 200), ("researcher", 200), ("member", 403), ("outsider", 404)]


@pytest.fixture
def job(project, base_model, owner):
    return judge_job_create(project=project, model=base_model, created_by=owner, enqueue=False)


@pytest.mark.parametrize("who, status", ROLES)
def test_it_lists_and_shows_jobs_to_researchers_and_managers_only(job, api_for, request, who, status):
    client = api_for(request.getfixturevalue(who))
    listed = client.get(f"/api/training/projects/{job.project.slug}/judge-jobs/")
    detail = client.get(f"/api/training/judge-jobs/{job.pk}/")
    assert listed.status_code == detail.status_code == status
    if status == 200:
        assert [j["id"] for j in listed.json()["results"]] == [job.pk]
        body = detail.json()
        assert body["model"] == "smol" and body["status"] == "queued" and body["template"].startswith("default@")
        assert "careful annotator" in body["template_text"]


@pytest.mark.parametrize("who, status", [("owner", 201), ("researcher", 403), ("member", 403), ("outsider", 404)])
def test_it_lets_only_managers_start_a_judge(project, base_model, api_for, request, who, status):
    response = api_for(request.getfixturevalue(who)).post(f"/api/training/projects/{project.slug}/judge-jobs/", {"model": "smol", "limit": 5}, format="json")
    assert response.status_code == status
    assert JudgeJob.objects.filter(project=project).count() == (1 if status == 201 else 0)
    if status == 201:
        assert response.json()["config"]["limit"] == 5


def test_it_refuses_a_bad_judge_naming_the_field(make_project, base_model, owner, api_for):
    project = make_project(Kind.RATING)
    client = api_for(owner)
    url = f"/api/training/projects/{project.slug}/judge-jobs/"
    assert client.post(url, {"model": "nope"}, format="json").json() == {"model": ["no registered judge model 'nope' you may use"]}
    assert "template" in client.post(url, {"model": "smol", "template": "fancy"}, format="json").json()
    assert "limit" in client.post(url, {"model": "smol", "limit": 0}, format="json").json()
    ModelArtifact.objects.create(name="rm", kind=ModelArtifact.Kind.REWARD_MODEL, source=ModelArtifact.Source.TRAINED, path="models/rm")
    assert "rating scale" in client.post(url, {"model": "rm"}, format="json").json()["model"][0]
    ModelArtifact.objects.create(name="enc", kind=ModelArtifact.Kind.ENCODER, source=ModelArtifact.Source.LOCAL, path="models/enc")
    assert client.post(url, {"model": "enc"}, format="json").status_code == 400


@pytest.mark.parametrize("who, status", [("owner", 200), ("researcher", 403), ("member", 403), ("outsider", 404)])
def test_it_lets_only_managers_cancel_and_resume(job, api_for, request, who, status):
    client = api_for(request.getfixturevalue(who))
    assert client.post(f"/api/training/judge-jobs/{job.pk}/cancel/").status_code == status
    job.refresh_from_db()
    assert job.status == ("cancelled" if status == 200 else "queued")
    resumed = client.post(f"/api/training/judge-jobs/{job.pk}/resume/")
    assert resumed.status_code == status
    if status == 200:
        # on_commit does not fire inside a test transaction: the job is back in the queue, not run.
        assert resumed.json()["status"] == "queued"
        assert client.post(f"/api/training/judge-jobs/{job.pk}/resume/").status_code == 409


@pytest.mark.parametrize("who, status", ROLES)
def test_it_shows_the_judge_page_by_role(job, client_for, request, who, status):
    response = client_for(request.getfixturevalue(who)).get(f"/training/projects/{job.project.slug}/judge/")
    assert response.status_code == status
    if status == 200:
        html = response.content.decode()
        assert "smol" in html and job.template_key in html and "The prompt the judge sees" in html
        assert ("Run the judge" in html) == (who == "owner")
        assert 'http-equiv="refresh"' in html  # a queued job: the page follows its progress


@pytest.mark.parametrize("who, status", [("owner", 302), ("researcher", 403), ("member", 403), ("outsider", 404)])
def test_it_starts_a_judge_and_saves_the_constitution_from_the_browser(project, base_model, client_for, request, who, status):
    client = client_for(request.getfixturevalue(who))
    started = client.post(f"/training/projects/{project.slug}/judge/start/", {"model": base_model.pk, "limit": "3"})
    saved = client.post(f"/training/projects/{project.slug}/judge/principles/", {"principles": "- Be honest.\n- Be harmless.\n"})
    assert started.status_code == saved.status_code == status
    project.refresh_from_db()
    if status == 302:
        job = JudgeJob.objects.get(project=project)
        assert job.config["limit"] == 3 and job.created_by.username == "owner"
        assert project.principles == "- Be honest.\n- Be harmless."
        page = client.get(f"/training/projects/{project.slug}/judge/").content.decode()
        assert "Be honest." in page
        # The constitution is in the prompt, so a job started now has a new template key.
        assert judge_job_create(project=project, model=base_model, enqueue=False).template_key != job.template_key
    else:
        assert not JudgeJob.objects.exists() and project.principles == ""


@pytest.mark.parametrize("who, status", [("owner", 302), ("researcher", 403), ("outsider", 404)])
def test_it_lets_only_managers_cancel_from_the_browser(job, client_for, request, who, status):
    assert client_for(request.getfixturevalue(who)).post(f"/training/judge/{job.pk}/cancel/").status_code == status
    job.refresh_from_db()
    assert job.status == ("cancelled" if status == 302 else "queued")


def test_its_command_runs_a_judge_here_and_resumes_when_run_again(make_project, add_items, capsys):
    from tests.training.judge_models import constant_judge_lm, register

    project = make_project(Kind.BINARY)
    add_items(project, 3)
    register(constant_judge_lm(Path(settings.ARTIFACT_ROOT) / "models" / "lm", {"a": 6.0}), "lm", ModelArtifact.Kind.CAUSAL_LM)
    call_command("judge_project", "--project", project.slug, "--model", "lm", "--limit", "2")
    assert "2/2 items, 2 judgments stored" in capsys.readouterr().out
    call_command("judge_project", "--project", project.slug, "--model", "lm")
    assert "3/3 items, 1 judgments stored" in capsys.readouterr().out
    with pytest.raises(CommandError, match="--model"):
        call_command("judge_project", "--project", project.slug, "--model", "nope")


def test_it_requeues_a_silent_job_and_fails_it_after_its_attempts(job, settings, django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.utils import timezone

    from training.judge.job import judge_claim
    from training.judge.services import judge_jobs_find_stale

    assert judge_claim(job_id=job.pk, worker_name="w1") == 1
    assert judge_claim(job_id=job.pk, worker_name="w2") is None  # alive: nobody else takes it
    old = timezone.now() - timedelta(seconds=settings.ARBITER_RUN_STALE_SECONDS + 5)
    JudgeJob.objects.filter(pk=job.pk).update(heartbeat_at=old)
    with django_capture_on_commit_callbacks() as queued:
        assert judge_jobs_find_stale() == [job.pk]
    assert len(queued) == 1
    job.refresh_from_db()
    assert job.status == "queued"
    JudgeJob.objects.filter(pk=job.pk).update(status="running", attempts=3, heartbeat_at=old)
    assert judge_jobs_find_stale() == []
    job.refresh_from_db()
    assert job.status == "failed" and "worker w1 stopped sending heartbeats" in job.error and "all 3 attempts" in job.error
