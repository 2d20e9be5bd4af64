"""Items and bulk import over the API, with the owner, a rater, a researcher and an outsider."""
from __future__ import annotations

import gzip
import json

from django.core.files.uploadedfile import SimpleUploadedFile

from annotation.models import ImportBatch, Item, Judgment


def records(n, prefix="p"):
    return [{"id": f"{prefix}-{i}", "prompt": f"Question {i}?", "responses": [f"A{i}", f"B{i}"]} for i in range(n)]


def test_it_lists_items_to_researchers_and_managers_only(project, add_items, api_for, owner, member, researcher, outsider):
    add_items(project, 3)
    url = f"/api/projects/{project.slug}/items/"
    for user in (owner, researcher):
        response = api_for(user).get(url)
        assert response.status_code == 200
        rows = response.json()["results"]
        assert [r["id"] for r in rows] == ["p-00000", "p-00001", "p-00002"]
        assert [c["text"] for c in rows[0]["candidates"]] == ["Answer 0 to p-00000", "Answer 1 to p-00000"]
    rater = api_for(member).get(url)
    assert rater.status_code == 403 and "results" not in rater.json()
    stranger = api_for(outsider).get(url)
    assert stranger.status_code == 404 and "results" not in stranger.json()


def test_it_pages_items_with_a_cursor(project, add_items, api_for, owner):
    add_items(project, 5)
    client = api_for(owner)
    first = client.get(f"/api/projects/{project.slug}/items/?page_size=2").json()
    second = client.get(first["next"]).json()
    assert [r["id"] for r in first["results"]] == ["p-00000", "p-00001"]
    assert [r["id"] for r in second["results"]] == ["p-00002", "p-00003"]
    assert "count" not in first  # no COUNT(*) over a million rows


def test_it_shows_one_item_and_hides_other_projects_items(project, make_project, add_items, api_for, owner, member, outsider):
    item = add_items(project, 1)[0]
    other = add_items(make_project(slug="other"), 1)[0]
    client = api_for(owner)
    body = client.get(f"/api/projects/{project.slug}/items/{item.id}/").json()
    assert body["id"] == item.external_id and body["prompt"] == "Question 0?"
    assert client.get(f"/api/projects/{project.slug}/items/{other.id}/").status_code == 404
    assert api_for(member).get(f"/api/projects/{project.slug}/items/{item.id}/").status_code == 403
    assert api_for(outsider).get(f"/api/projects/{project.slug}/items/{item.id}/").status_code == 404


def test_it_imports_a_json_list_for_the_owner_only(project, api_for, owner, member, researcher, outsider):
    url = f"/api/projects/{project.slug}/items/import/"
    payload = {"items": records(3)}
    assert api_for(member).post(url, payload, format="json").status_code == 403
    assert api_for(researcher).post(url, payload, format="json").status_code == 403
    assert api_for(outsider).post(url, payload, format="json").status_code == 404
    assert not Item.objects.exists()

    response = api_for(owner).post(url, payload, format="json")
    assert response.status_code == 201
    assert (response.json()["status"], response.json()["items_created"]) == ("succeeded", 3)
    again = api_for(owner).post(url, payload, format="json").json()
    assert (again["items_created"], again["items_skipped"]) == (0, 3)
    assert Item.objects.filter(project=project).count() == 3


def test_it_answers_a_bad_json_list_with_every_bad_record_and_imports_nothing(project, api_for, owner):
    items = records(4)
    items[1]["responses"] = ["only one"]
    items[3] = {"id": "x", "prompt": 5, "responses": ["a", "b"]}
    response = api_for(owner).post(f"/api/projects/{project.slug}/items/import/", {"items": items}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert [(e["line"], e["field"]) for e in body["errors"]] == [(2, "responses"), (4, "prompt")]
    assert ImportBatch.objects.get(id=body["batch"]).status == "failed"
    assert not Item.objects.filter(project=project).exists()


def test_it_stores_preferences_as_judgments_when_asked(project, api_for, owner):
    payload = {"items": [{"prompt": "q", "chosen": "good", "rejected": "bad"}], "as_judgments": True}
    response = api_for(owner).post(f"/api/projects/{project.slug}/items/import/", payload, format="json")
    assert response.status_code == 201 and response.json()["judgments_created"] == 1
    assert Judgment.objects.get(project=project).source == "import"


def test_it_queues_an_uploaded_file_and_reports_its_batch(project, api_for, owner, member, outsider, django_capture_on_commit_callbacks):
    data = gzip.compress("".join(json.dumps(r) + "\n" for r in records(4)).encode())
    url = f"/api/projects/{project.slug}/items/import/"
    upload = lambda: SimpleUploadedFile("items.jsonl.gz", data, content_type="application/gzip")  # noqa: E731
    assert api_for(member).post(url, {"file": upload()}, format="multipart").status_code == 403
    assert api_for(outsider).post(url, {"file": upload()}, format="multipart").status_code == 404

    with django_capture_on_commit_callbacks(execute=True):
        response = api_for(owner).post(url, {"file": upload()}, format="multipart")
    assert response.status_code == 202 and response.json()["status"] == "queued"
    batch_url = f"/api/projects/{project.slug}/imports/{response.json()['id']}/"
    batch = api_for(owner).get(batch_url).json()
    assert (batch["status"], batch["items_created"], batch["filename"]) == ("succeeded", 4, "items.jsonl.gz")
    assert api_for(member).get(batch_url).status_code == 403
    assert api_for(outsider).get(batch_url).status_code == 404
    history = api_for(owner).get(f"/api/projects/{project.slug}/imports/").json()["results"]
    assert [b["id"] for b in history] == [batch["id"]]


def test_it_refuses_a_request_with_neither_items_nor_file(project, api_for, owner):
    response = api_for(owner).post(f"/api/projects/{project.slug}/items/import/", {"as_judgments": True}, format="json")
    assert response.status_code == 400 and "either" in json.dumps(response.json())
