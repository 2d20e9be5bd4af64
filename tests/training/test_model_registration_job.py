"""Registering a model from the browser is a job on the `jobs` queue: the request returns at once,
the registration's page shows where it stands, and a retry while it converts says what is
happening instead of "folder exists but is not registered; remove it". The path rules
(test_model_path_safety.py) are checked before the job is queued and again by the worker."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from training.models import ModelArtifact
from training.registration.job import registration_execute
from training.registration.models import RegistrationJob
from training.registry.services import MINILM_NAME, PATH_REFUSED, SMOLLM2_NAME
from training.runs import lifecycle

from tests.training.test_model_path_safety import inbox, make_folder  # noqa: F401 - a fixture and a helper

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_worker(monkeypatch):
    """Messages are recorded, not run: the job waits as it would for a busy `jobs` worker."""
    from training.tasks import model_register

    sent = []
    monkeypatch.setattr(model_register, "apply_async", lambda args, queue: sent.append((args[0], queue)))
    return sent


def test_it_queues_the_registration_and_shows_its_progress_until_the_model_is_there(client_for, project, owner, no_worker):
    client = client_for(owner)
    response = client.post("/training/models/add/", {"source": "minilm"})
    job = RegistrationJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/training/models/registrations/{job.pk}/"
    assert no_worker == [(job.pk, "jobs")] and not ModelArtifact.objects.exists()
    page = client.get(response["Location"]).content.decode()
    assert "Registration of all-minilm-l6-v2 queued" in page and "queued, next in line on the jobs queue" in page
    assert 'http-equiv="refresh"' in page
    listing = client.get("/training/models/").content.decode()
    assert "Being registered" in listing and f'/training/models/registrations/{job.pk}/">{MINILM_NAME}</a>: queued' in listing

    assert registration_execute(job_id=job.pk, worker_name="jobs@test") == "succeeded"
    model = ModelArtifact.objects.get(name=MINILM_NAME)
    response = client.get(f"/training/models/registrations/{job.pk}/", follow=True)
    assert response.redirect_chain == [(f"/training/models/{model.pk}/", 302)]
    assert "all-minilm-l6-v2 registered (Encoder, Local folder)" in response.content.decode()
    assert "Being registered" not in client.get("/training/models/").content.decode()


def test_it_says_a_registration_is_in_progress_when_asked_again(client_for, project, owner, no_worker):
    started = timezone.now() - timedelta(seconds=20)
    job = RegistrationJob.objects.create(name=SMOLLM2_NAME, source="smollm2", created_by=owner, status=lifecycle.Status.RUNNING,
                                         phase="converting", started_at=started, heartbeat_at=started)
    client = client_for(owner)
    response = client.post("/training/models/add/", {"source": "smollm2"}, follow=True)
    page = response.content.decode()
    assert response.redirect_chain == [(f"/training/models/registrations/{job.pk}/", 302)]
    when = timezone.localtime(started).strftime("%H:%M:%S")
    assert f"registration of {SMOLLM2_NAME} is in progress, started at {when}" in page
    assert "converting" in page and "remove it" not in page
    assert RegistrationJob.objects.count() == 1 and not no_worker


def test_it_starts_over_when_the_registration_in_progress_lost_its_worker(client_for, project, owner, no_worker, settings):
    settings.ARBITER_GGUF_TIMEOUT = 60
    silent = timezone.now() - timedelta(seconds=60 + settings.ARBITER_RUN_STALE_SECONDS + 5)
    dead = RegistrationJob.objects.create(name=MINILM_NAME, source="minilm", created_by=owner, status=lifecycle.Status.RUNNING,
                                          phase="saving", started_at=silent, heartbeat_at=silent)
    response = client_for(owner).post("/training/models/add/", {"source": "minilm"})
    dead.refresh_from_db()
    assert dead.status == "failed" and "its worker stopped" in dead.error
    fresh = RegistrationJob.objects.exclude(pk=dead.pk).get()
    assert response["Location"] == f"/training/models/registrations/{fresh.pk}/" and no_worker == [(fresh.pk, "jobs")]


def test_it_shows_a_registration_only_to_who_asked_and_staff(client_for, project, owner, member, outsider, staff, make_user, no_worker):
    client_for(owner).post("/training/models/add/", {"source": "minilm"})
    url = f"/training/models/registrations/{RegistrationJob.objects.get().pk}/"
    assert client_for(owner).get(url).status_code == 200
    assert client_for(staff).get(url).status_code == 200
    for user in (member, outsider, make_user("other-manager")):
        assert client_for(user).get(url).status_code == 404


def test_it_shows_the_workers_refusal_on_the_registration_page(client_for, project, staff, inbox, no_worker):
    folder = make_folder(inbox / "tiny")
    client = client_for(staff)
    response = client.post("/training/models/add/", {"source": "folder", "path": "tiny", "name": "tiny"})
    job = RegistrationJob.objects.get()
    # The folder is checked in the request; by the time the worker runs, it has been moved away.
    folder.rename(inbox.parent / "moved")
    assert registration_execute(job_id=job.pk, worker_name="jobs@test") == "failed"
    page = client.get(response["Location"]).content.decode()
    assert "failed" in page and PATH_REFUSED in page and not ModelArtifact.objects.exists()
    # A second delivery of the message does nothing.
    assert registration_execute(job_id=job.pk, worker_name="jobs@other") == "skipped"


def test_it_refuses_a_bad_folder_in_the_request_before_queueing(client_for, project, staff, inbox, no_worker):
    folder = make_folder(inbox / "nofiles")
    (folder / "model.safetensors").unlink()
    response = client_for(staff).post("/training/models/add/", {"source": "folder", "path": "nofiles", "name": "nofiles"})
    assert response.status_code == 400 and "no *.safetensors weights" in response.content.decode()
    assert not RegistrationJob.objects.exists() and not no_worker
