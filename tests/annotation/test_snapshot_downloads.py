"""Snapshot pages and API: who may see, build and download, and what the downloads hold."""
from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest
from django.http import StreamingHttpResponse

from annotation.exports import snapshot_create
from annotation.exports.build import snapshot_build
from annotation.kinds import Kind
from annotation.models import DatasetSnapshot, Judgment, Role


@pytest.fixture
def ready(project, add_items, member, owner):
    for i, item in enumerate(add_items(project, 12, chat=True)):
        Judgment.objects.create(project=project, item=item, rater=member, kind=Kind.BINARY, value={"winner": i % 2}, display_order=[1, 0])
    snapshot = snapshot_create(project=project, options={"test_share": 0.25}, created_by=owner, enqueue=False)
    return snapshot_build(snapshot_id=snapshot.id)


def body(response) -> bytes:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content)


def archive_members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


PAGES = ["/projects/demo/datasets/", "/projects/demo/datasets/v1/", "/projects/demo/datasets/v1/status.json",
         "/projects/demo/datasets/v1/download/", "/projects/demo/datasets/v1/files/preference/train.jsonl"]
API = ["/api/projects/demo/datasets/", "/api/projects/demo/datasets/1/", "/api/projects/demo/datasets/1/archive/",
       "/api/projects/demo/datasets/1/files/sft/test.parquet"]


@pytest.mark.parametrize("url", PAGES)
def test_it_shows_datasets_pages_only_to_researchers_managers_and_staff(ready, client_for, owner, member, researcher, outsider, staff, url):
    for user in (owner, researcher, staff):
        assert client_for(user).get(url).status_code == 200, (user, url)
    assert client_for(member).get(url).status_code == 403
    assert client_for(outsider).get(url).status_code == 404
    assert client_for(None).get(url).status_code == 302  # to the login page


@pytest.mark.parametrize("url", API)
def test_it_serves_the_api_only_to_researchers_managers_and_staff(ready, api_for, owner, member, researcher, outsider, staff, url):
    for user in (owner, researcher, staff):
        assert api_for(user).get(url).status_code == 200, (user, url)
    assert api_for(member).get(url).status_code == 403
    assert api_for(outsider).get(url).status_code == 404
    assert api_for(None).get(url).status_code == 401


def test_it_streams_the_whole_snapshot_as_a_tar_gz_whose_files_match_the_manifest(ready, client_for, api_for, researcher):
    for response in (client_for(researcher).get("/projects/demo/datasets/v1/download/"), api_for(researcher).get("/api/projects/demo/datasets/1/archive/")):
        assert response["Content-Disposition"] == 'attachment; filename="demo-v1.tar.gz"'
        members = archive_members(body(response))
        manifest = json.loads(members["demo-v1/manifest.json"])
        assert set(members) == {f"demo-v1/{name}" for name in manifest["files"]} | {"demo-v1/manifest.json"}
        for name, meta in manifest["files"].items():
            assert hashlib.sha256(members[f"demo-v1/{name}"]).hexdigest() == meta["sha256"]


def test_it_downloads_one_file_and_refuses_paths_outside_the_snapshot(ready, client_for, researcher):
    c = client_for(researcher)
    response = c.get("/projects/demo/datasets/v1/files/preference/train.jsonl")
    content = b"".join(response.streaming_content)
    assert hashlib.sha256(content).hexdigest() == ready.manifest["files"]["preference/train.jsonl"]["sha256"]
    assert json.loads(content.splitlines()[0])["chosen"][0]["role"] == "assistant"
    assert c.get("/projects/demo/datasets/v1/files/../../secret_key").status_code == 404
    assert c.get("/projects/demo/datasets/v1/files/preference/nope.jsonl").status_code == 404
    assert c.get("/projects/demo/datasets/v9/").status_code == 404


def test_it_builds_from_the_browser_and_shows_progress_then_the_card(project, add_items, member, client_for, researcher, django_capture_on_commit_callbacks):
    for item in add_items(project, 4):
        Judgment.objects.create(project=project, item=item, rater=member, kind=Kind.BINARY, value={"winner": 0})
    c = client_for(researcher)
    page = c.get("/projects/demo/datasets/")
    assert b'name="aggregation"' in page.content and b"datasets.js" in page.content and b"<script>" not in page.content
    form = {"aggregation": "majority", "min_agreement": "0", "sft_min_agreement": "1", "keep_ties": "on", "keep_both_bad": "on", "test_share": "0.5", "seed": "3"}
    # The build runs on commit; here the page first sees it queued, with a status URL to poll.
    response = c.post("/projects/demo/datasets/", form)
    assert response.status_code == 302
    snapshot = DatasetSnapshot.objects.get(project=project)
    assert snapshot.options["seed"] == 3 and snapshot.options["keep_gold"] is False and snapshot.created_by == researcher
    listing = c.get("/projects/demo/datasets/").content.decode()
    assert 'data-status-url="/projects/demo/datasets/v1/status.json"' in listing
    assert c.get("/projects/demo/datasets/v1/status.json").json() == {"version": 1, "status": "queued", "progress": 0.0, "error": ""}

    with django_capture_on_commit_callbacks(execute=True):
        c.post("/projects/demo/datasets/", form)
    assert c.get("/projects/demo/datasets/v2/status.json").json()["status"] == "ready"
    detail = c.get("/projects/demo/datasets/v2/").content.decode()
    assert "<h2>How to load it</h2>" in detail and "preference/train.parquet" in detail and "Download everything" in detail


def test_it_shows_form_errors_and_builds_nothing_for_bad_options(project, client_for, owner):
    response = client_for(owner).post("/projects/demo/datasets/", {"aggregation": "vibes", "min_agreement": "2", "sft_min_agreement": "1", "test_share": "0.1", "seed": "0"})
    assert response.status_code == 200
    assert b"Min agreement" in response.content and b"vibes" in response.content
    assert not DatasetSnapshot.objects.exists()


def test_it_creates_snapshots_over_the_api_and_combines_projects_the_user_may_see(
    project, make_project, add_items, member, api_for, researcher, django_capture_on_commit_callbacks
):
    other = make_project(Kind.BINARY, slug="other")
    for p in (project, other):
        for item in add_items(p, 3):
            Judgment.objects.create(project=p, item=item, rater=member, kind=Kind.BINARY, value={"winner": 1})
    api = api_for(researcher)
    bad = api.post("/api/projects/demo/datasets/", {"options": {"test_share": 3}}, format="json")
    assert bad.status_code == 400 and "test_share" in bad.json()["options"]
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post("/api/projects/demo/datasets/", {"options": {"test_share": 0}, "extra_projects": ["other"]}, format="json")
    assert created.status_code == 201 and created.json()["version"] == 1
    detail = api.get("/api/projects/demo/datasets/1/").json()
    assert detail["status"] == "ready" and detail["extra_projects"] == ["other"]
    assert detail["manifest"]["counts"]["preference"]["train"] == 6
    assert detail["files"]["preference/train.parquet"] == "/api/projects/demo/datasets/1/files/preference/train.parquet"
    listing = api.get("/api/projects/demo/datasets/").json()
    assert [s["version"] for s in listing["results"]] == [1]
    # A project the researcher is not on cannot be pulled into their snapshot.
    hidden = make_project(Kind.BINARY, slug="hidden")
    hidden.memberships.filter(user=researcher).delete()
    assert api.post("/api/projects/demo/datasets/", {"extra_projects": ["hidden"]}, format="json").status_code == 404
    assert api_for(member).post("/api/projects/demo/datasets/", {}, format="json").status_code == 403


def test_it_offers_to_combine_only_projects_where_the_user_is_researcher_or_more(project, make_project, client_for, researcher, staff):
    make_project(Kind.BINARY, slug="other", name="Other Project")
    low = make_project(Kind.BINARY, slug="low", name="Low Project")
    low.memberships.filter(user=researcher).update(role=Role.RATER)
    make_project(Kind.BINARY, slug="hidden", name="Hidden Project").memberships.filter(user=researcher).delete()
    page = client_for(researcher).get("/projects/demo/datasets/").content.decode()
    assert 'value="other"' in page
    assert 'value="low"' not in page and 'value="hidden"' not in page and 'value="demo"' not in page
    everything = client_for(staff).get("/projects/demo/datasets/").content.decode()
    assert all(f'value="{slug}"' in everything for slug in ("other", "low", "hidden"))
    assert 'value="demo"' not in everything


def test_it_offers_managers_training_on_a_ready_snapshot(ready, client_for, owner, researcher):
    link = f"/training/projects/demo/new/?snapshot={ready.id}"
    assert link in client_for(owner).get("/projects/demo/datasets/v1/").content.decode()
    assert link not in client_for(researcher).get("/projects/demo/datasets/v1/").content.decode()
    # The form the link opens preselects that snapshot.
    form = client_for(owner).get(link)
    assert form.status_code == 200
