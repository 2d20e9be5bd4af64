"""The browser import page: managers upload, see the history and every bad line; others get nothing."""
from __future__ import annotations

import json

from django.core.files.uploadedfile import SimpleUploadedFile

from annotation.importers import import_records
from annotation.models import ImportBatch, Item, Judgment


def jsonl_file(name, *records):
    return SimpleUploadedFile(name, "".join(json.dumps(r) + "\n" for r in records).encode())


def test_it_shows_the_page_to_managers_only(project, client_for, owner, member, researcher, outsider):
    url = f"/projects/{project.slug}/import/"
    page = client_for(owner).get(url)
    assert page.status_code == 200 and b'id="import-form"' in page.content and b"Nothing imported yet" in page.content
    assert client_for(member).get(url).status_code == 403
    assert client_for(researcher).get(url).status_code == 403
    assert client_for(outsider).get(url).status_code == 404
    assert client_for(None).get(url).status_code == 302  # to the login page


def test_it_imports_an_upload_and_lists_it_in_the_history(project, client_for, owner, tmp_path, settings, django_capture_on_commit_callbacks):
    client = client_for(owner)
    upload = jsonl_file("prefs.jsonl", {"prompt": "Best fruit?", "chosen": "Mango.", "rejected": "Rocks."})
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/projects/{project.slug}/import/", {"file": upload, "as_judgments": "on"})
    assert response.status_code == 302
    batch = ImportBatch.objects.get(project=project)
    assert (batch.status, batch.items_created, batch.judgments_created, batch.created_by) == ("succeeded", 1, 1, owner)
    assert Judgment.objects.get(project=project).source == "import"
    assert list(settings.UPLOAD_DIR.iterdir()) == []  # the saved upload is removed once imported

    page = client.get(response["Location"]).content.decode()
    assert "prefs.jsonl" in page and "succeeded" in page and 'http-equiv="refresh"' not in page


def test_it_shows_every_bad_line_of_a_failed_upload(project, client_for, owner, member, outsider, django_capture_on_commit_callbacks):
    client = client_for(owner)
    upload = jsonl_file(
        "bad.jsonl",
        {"id": "a", "prompt": "q", "responses": ["x", "y"]},
        {"id": "b", "prompt": "q", "responses": ["x"]},
        {"id": "c", "prompt": "", "responses": ["x", "y"]},
    )
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/projects/{project.slug}/import/", {"file": upload})
    assert not Item.objects.filter(project=project).exists()
    batch = ImportBatch.objects.get(project=project)
    page = client.get(f"/projects/{project.slug}/import/").content.decode()
    assert "failed" in page
    assert "line 2: <code>responses</code>: this binary project needs 2 responses per item, got 1" in page
    assert "line 3: <code>prompt</code>: must not be empty" in page

    detail_url = f"/projects/{project.slug}/import/{batch.id}/"
    detail = client.get(detail_url).content.decode()
    assert "Nothing was imported: 2 problems" in detail and "line 3" in detail
    assert client_for(member).get(detail_url).status_code == 403
    assert client_for(outsider).get(detail_url).status_code == 404


def test_it_refreshes_while_an_import_is_queued(project, client_for, owner):
    # Without the on-commit callback the worker never runs: the batch stays queued.
    client_for(owner).post(f"/projects/{project.slug}/import/", {"file": jsonl_file("later.jsonl", {"prompt": "q", "chosen": "a", "rejected": "b"})})
    page = client_for(owner).get(f"/projects/{project.slug}/import/").content.decode()
    assert "queued" in page and 'http-equiv="refresh"' in page


def test_it_escapes_file_names_and_messages_from_the_upload(project, client_for, owner):
    import_records(project=project, records=[{"id": "x", "prompt": "q", "responses": ["a", "b"]}], created_by=owner)
    ImportBatch.objects.filter(project=project).update(filename="<script>alert(1)</script>.jsonl")
    page = client_for(owner).get(f"/projects/{project.slug}/import/").content.decode()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
