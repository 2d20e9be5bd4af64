"""Snapshots that hold several projects (extra_projects). Starting a run needs the manager role
on the snapshot's project and at least researcher on every project inside it; a run's results and
samples are shown only to users who may read every project in the snapshot. Tested with the
owner (manager of both projects), a manager and a researcher who hold only project A, the rater
member and an outsider, through the browser and the API."""
from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from annotation.models import DatasetSnapshot, Membership, Role
from training.models import TrainingRun
from training.runs.services import run_create

pytestmark = pytest.mark.django_db

SECRET = "project B confidential prompt"


@pytest.fixture
def shared(project, make_project, researcher):
    """Snapshot of project A (`demo`) that also holds project B; the researcher holds only A."""
    other = make_project(slug="bee", name="Project B")
    Membership.objects.filter(project=other, user=researcher).delete()
    snap = DatasetSnapshot.objects.create(project=project, version=7, status=DatasetSnapshot.Status.READY, path="snapshots/demo/v7")
    snap.extra_projects.add(other)
    return snap


@pytest.fixture
def a_manager(make_user, project):
    user = make_user("a-manager")
    Membership.objects.create(project=project, user=user, role=Role.MANAGER)
    return user


def api_start(api_for, user, project, snapshot):
    return api_for(user).post("/api/training/runs/", {"project": project.slug, "snapshot": snapshot.pk, "base_model": "smol",
                                                      "method": "reward"}, format="json")


def test_it_lets_only_a_user_who_may_read_every_project_start_a_run(api_for, client_for, project, shared, base_model, owner, a_manager,
                                                                    researcher, member, outsider):
    response = api_start(api_for, a_manager, project, shared)
    assert response.status_code == 403 and "Project B" in response.json()["detail"], response.content
    for user, code in ((researcher, 403), (member, 403), (outsider, 404)):
        assert api_start(api_for, user, project, shared).status_code == code
    # The start form does not offer the snapshot to A's manager, and a forged post is refused.
    page = client_for(a_manager).get(f"/training/projects/{project.slug}/new/").content.decode()
    assert ">v7 · " not in page
    response = client_for(a_manager).post(f"/training/projects/{project.slug}/new/", {"snapshot": shared.pk, "base_model": base_model.pk,
                                                                                     "method": "reward", "training": "lora"})
    assert response.status_code == 400 and not TrainingRun.objects.exists()
    # The service itself refuses, whoever calls it.
    with pytest.raises(PermissionDenied, match="Project B"):
        run_create(project=project, snapshot=shared, base_model=base_model, method="reward", created_by=a_manager)
    # The manager of both may.
    assert ">v7 · " in client_for(owner).get(f"/training/projects/{project.slug}/new/").content.decode()
    assert api_start(api_for, owner, project, shared).status_code == 201
    # A manager of A who is also a researcher on B may too.
    Membership.objects.create(project=shared.extra_projects.get(), user=a_manager, role=Role.RESEARCHER)
    assert api_start(api_for, a_manager, project, shared).status_code == 201


def test_it_shows_results_and_samples_only_to_users_who_may_read_every_project(api_for, client_for, project, shared, base_model, owner,
                                                                               researcher, member, outsider, staff):
    run = TrainingRun.objects.create(project=project, snapshot=shared, base_model=base_model, method="dpo", status="succeeded",
                                     result={"test": {"accuracy": 0.75}, "samples": [{"prompt": SECRET, "policy": "p", "reference": "r"}]})
    for user in (owner, staff):
        page = client_for(user).get(f"/training/runs/{run.pk}/").content.decode()
        assert "0.75" in page and "data-results-hidden" not in page and f"/training/runs/{run.pk}/samples/" in page
        assert SECRET in client_for(user).get(f"/training/runs/{run.pk}/samples/").content.decode()
        assert api_for(user).get(f"/api/training/runs/{run.pk}/").json()["result"]["samples"][0]["prompt"] == SECRET
    # The researcher of A sees that the run exists and how it went, not what B's data says.
    page = client_for(researcher).get(f"/training/runs/{run.pk}/")
    assert page.status_code == 200 and "data-results-hidden" in page.content.decode()
    assert SECRET not in page.content.decode() and "/samples/" not in page.content.decode()
    assert client_for(researcher).get(f"/training/runs/{run.pk}/samples/").status_code == 403
    body = api_for(researcher).get(f"/api/training/runs/{run.pk}/").json()
    assert body["status"] == "succeeded" and body["result"] is None
    listed = api_for(researcher).get("/api/training/runs/").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert all(row["result"] is None for row in rows if row["id"] == run.pk) and SECRET not in str(listed)
    for user, code in ((member, 403), (outsider, 404)):
        assert client_for(user).get(f"/training/runs/{run.pk}/samples/").status_code == code
        assert api_for(user).get(f"/api/training/runs/{run.pk}/").status_code == code
