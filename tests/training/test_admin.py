"""Django admin: a run added there goes through run_create (defaults, checks, the queue);
actions cancel runs and start them again."""
from __future__ import annotations

import pytest

from annotation.models import DatasetSnapshot
from training.models import ModelArtifact, TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(project):
    snapshot = DatasetSnapshot.objects.create(project=project, version=1, status="ready", path="snapshots/demo/v1")
    base = ModelArtifact.objects.create(name="smol", kind="causal_lm", source="gguf", path="models/smol")
    return snapshot, base


def test_it_adds_a_run_through_the_service(client_for, staff, project, setup):
    snapshot, base = setup
    client = client_for(staff)
    assert client.get("/admin/training/trainingrun/add/").status_code == 200
    data = {"project": project.pk, "snapshot": snapshot.pk, "base_model": base.pk, "method": "reward", "use_lora": "on",
            "config": '{"num_train_epochs": 2}'}
    response = client.post("/admin/training/trainingrun/add/", data)
    assert response.status_code == 302, response.content.decode()[-2000:]
    run = TrainingRun.objects.get()
    assert run.created_by == staff and run.status == "queued" and run.config["num_train_epochs"] == 2.0
    assert run.config["per_device_train_batch_size"] == 8  # defaults filled by run_create
    response = client.post("/admin/training/trainingrun/add/", {**data, "config": '{"num_train_epochs": "many"}'})
    assert response.status_code == 200 and "is not a valid float" in response.content.decode()
    assert TrainingRun.objects.count() == 1  # the dry run left nothing behind
    assert client.get(f"/admin/training/trainingrun/{run.pk}/change/").status_code == 200
    assert "num_train_epochs" in client.get(f"/admin/training/trainingrun/{run.pk}/change/").content.decode()


def test_it_cancels_and_restarts_selected_runs(client_for, staff, project, setup):
    snapshot, base = setup
    queued = TrainingRun.objects.create(project=project, snapshot=snapshot, base_model=base, method="reward", config={"num_train_epochs": 2})
    done = TrainingRun.objects.create(project=project, snapshot=snapshot, base_model=base, method="reward", status="succeeded")
    client = client_for(staff)
    client.post("/admin/training/trainingrun/", {"action": "cancel_runs", "_selected_action": [queued.pk, done.pk]})
    queued.refresh_from_db()
    done.refresh_from_db()
    assert queued.status == "cancelled" and done.status == "succeeded"
    client.post("/admin/training/trainingrun/", {"action": "start_again", "_selected_action": [queued.pk]})
    again = TrainingRun.objects.exclude(pk__in=[queued.pk, done.pk]).get()
    assert again.status == "queued" and again.config["num_train_epochs"] == 2.0 and again.created_by == staff


def test_it_shows_the_registry_read_only(client_for, staff, setup):
    _, base = setup
    client = client_for(staff)
    assert "smol" in client.get("/admin/training/modelartifact/").content.decode()
    assert client.get("/admin/training/modelartifact/add/").status_code == 403


def test_it_starts_runs_on_selected_snapshots_from_an_admin_action(client_for, staff, project, setup):
    snapshot, base = setup
    DatasetSnapshot.objects.create(project=project, version=2, status="building")
    client = client_for(staff)
    listing = client.get("/admin/training/snapshotfortraining/").content.decode()
    assert "demo v1" in listing and "demo v2" not in listing  # only ready snapshots
    url = "/admin/training/snapshotfortraining/"
    page = client.post(url, {"action": "start_training", "_selected_action": [snapshot.pk]})
    assert page.status_code == 200 and "Start a run on each of these snapshots" in page.content.decode()
    assert not TrainingRun.objects.exists()  # the first step only asks
    bad = client.post(url, {"action": "start_training", "_selected_action": [snapshot.pk], "apply": "1",
                            "base_model": base.pk, "method": "reward", "use_lora": "on", "config": "{oops"})
    assert "not valid JSON" in bad.content.decode() and not TrainingRun.objects.exists()
    done = client.post(url, {"action": "start_training", "_selected_action": [snapshot.pk], "apply": "1",
                             "base_model": base.pk, "method": "reward", "use_lora": "on", "config": '{"num_train_epochs": 2}'}, follow=True)
    run = TrainingRun.objects.get()
    assert run.snapshot == snapshot and run.project == project and run.config["num_train_epochs"] == 2.0 and run.created_by == staff
    assert f"Queued run(s) {run.pk}" in done.content.decode()


def test_it_lists_the_short_jobs_read_only(client_for, staff, project, setup):
    """Judge, evaluation/generation and registration jobs are in the admin for staff to find,
    and cannot be added or edited there (their own pages start and cancel them)."""
    from training.judge.models import JudgeJob
    from training.loop.models import Job
    from training.registration.models import RegistrationJob

    _, base = setup
    judge = JudgeJob.objects.create(project=project, model=base)
    job = Job.objects.create(kind=Job.Kind.GENERATION, policy=base, project=project)
    registration = RegistrationJob.objects.create(name="smol-2", source="folder")
    client = client_for(staff)
    for model, row, shown in (("judgejob", judge, "smol"), ("job", job, "generation"), ("registrationjob", registration, "smol-2")):
        listing = client.get(f"/admin/training/{model}/")
        assert listing.status_code == 200 and shown in listing.content.decode().lower(), model
        assert client.get(f"/admin/training/{model}/add/").status_code == 403
        assert client.get(f"/admin/training/{model}/{row.pk}/change/").status_code == 200  # a view, not a form
        assert client.post(f"/admin/training/{model}/{row.pk}/change/", {}).status_code == 403
