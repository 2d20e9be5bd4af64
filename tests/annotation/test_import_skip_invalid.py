"""Skipping the bad lines: the command's --skip-invalid, the form's "Skip the bad lines" and the
API's skip_invalid import the good lines and report every bad one as file:line:field with its
reason (command output, the import's stored report and page, the API response). Refusing the whole
file stays the default, and a file that cannot be read on still imports nothing."""
from __future__ import annotations

import gzip
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from annotation.models import ImportBatch, Item, Project

GOOD = [{"id": f"ok-{i}", "prompt": f"Question {i}?", "responses": [f"A{i}", f"B{i}"]} for i in range(3)]


def mixed_lines() -> list[str]:
    """Three good records on lines 1, 3 and 6; bad ones on 2, 4, 5 (and 7 repeats line 1's id)."""
    return [
        json.dumps(GOOD[0]),
        json.dumps({"id": "short", "prompt": "q", "responses": ["only one"]}),
        json.dumps(GOOD[1]),
        "{not json",
        json.dumps({"id": "nostr", "prompt": "q", "responses": ["a", 7]}),
        json.dumps(GOOD[2]),
        json.dumps({"id": "ok-0", "prompt": "again", "responses": ["x", "y"]}),
    ]


EXPECTED = [(2, "responses"), (4, "line"), (5, "responses[1]"), (7, "id")]


def write(path, lines):
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_it_refuses_the_whole_file_by_default_and_says_how_to_skip(project, tmp_path, capsys):
    path = write(tmp_path / "mixed.jsonl", mixed_lines())
    with pytest.raises(CommandError):
        call_command("import_items", str(path), project=project.slug)
    err = capsys.readouterr().err
    assert "4 bad line(s); nothing imported (--skip-invalid imports the good lines)" in err
    assert not Item.objects.filter(project=project).exists()


def test_the_command_imports_the_good_lines_and_lists_each_bad_one(project, tmp_path, capsys):
    path = write(tmp_path / "mixed.jsonl", mixed_lines())
    call_command("import_items", str(path), project=project.slug, skip_invalid=True)
    out, err = capsys.readouterr()

    assert set(Item.objects.filter(project=project).values_list("external_id", flat=True)) == {"ok-0", "ok-1", "ok-2"}
    assert Item.objects.get(external_id="ok-0").prompt == "Question 0?"  # the repeat on line 7 did not replace it
    assert "3 items created, 0 skipped" in out and "4 bad line(s) left out" in out
    printed = [line for line in err.splitlines() if line.endswith("(skipped)")]
    assert [tuple(line.split(": ")[0].rsplit(":", 1)) for line in printed] == [(str(path), str(n)) for n, _ in EXPECTED]
    assert f"{path}:2: responses: this binary project needs 2 responses per item, got 1 (skipped)" in err
    assert f"{path}:5: responses[1]: must be a string" in err
    assert f"{path}:7: id: repeats the id of line 1 (skipped)" in err

    batch = ImportBatch.objects.get(project=project)
    assert (batch.status, batch.skip_invalid, batch.lines_invalid, batch.items_created, batch.lines_read) == ("succeeded", True, 4, 3, 7)
    assert [(e["file"], e["line"], e["field"]) for e in batch.errors] == [("mixed.jsonl", n, f) for n, f in EXPECTED]
    assert all(e["message"] for e in batch.errors)


def test_it_lists_every_skipped_line_past_the_cap_of_a_refused_file(project, tmp_path, settings):
    from annotation.importers import MAX_ERRORS, import_path

    lines = [json.dumps({"id": f"bad-{i}", "prompt": "q", "responses": ["one"]}) for i in range(MAX_ERRORS + 5)] + [json.dumps(GOOD[0])]
    batch = import_path(project=project, path=write(tmp_path / "many.jsonl", lines), skip_invalid=True)
    # Nothing is lost: a refused file keeps the first MAX_ERRORS; a skipped line is always listed.
    assert batch.lines_invalid == MAX_ERRORS + 5 and len(batch.errors) == MAX_ERRORS + 5
    assert [e["line"] for e in batch.errors] == list(range(1, MAX_ERRORS + 6))
    assert Item.objects.filter(project=project).count() == 1


def test_a_file_that_cannot_be_read_on_still_imports_nothing(project, tmp_path, capsys):
    # 500 good rows (past the decoder's first chunk), then bytes that are not UTF-8: the CSV
    # reader cannot go on, so the rows before must not go in alone (those after were never read).
    path = tmp_path / "broken.csv"
    rows = b"".join(b"ok-%d,Question %d?,a,b\n" % (i, i) for i in range(500))
    path.write_bytes(b"id,prompt,response_1,response_2\n" + rows + b"bad,\xff\xfe,a,b\nlater,q,a,b\n")
    with pytest.raises(CommandError):
        call_command("import_items", str(path), project=project.slug, skip_invalid=True)
    assert "nothing imported" in capsys.readouterr().err
    assert not Item.objects.filter(project=project).exists()
    assert ImportBatch.objects.get(project=project).status == "failed"


def test_the_browser_import_skips_the_bad_lines_and_shows_them(project, client_for, owner, member, outsider, django_capture_on_commit_callbacks):
    client = client_for(owner)
    form = client.get(f"/projects/{project.slug}/import/").content.decode()
    assert 'name="skip_invalid"' in form and "Skip the bad lines" in form
    upload = SimpleUploadedFile("mixed.jsonl.gz", gzip.compress("".join(line + "\n" for line in mixed_lines()).encode()))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/projects/{project.slug}/import/", {"file": upload, "skip_invalid": "on"})
    batch = ImportBatch.objects.get(project=project)
    assert (batch.status, batch.items_created, batch.lines_invalid) == ("succeeded", 3, 4)

    history = client.get(f"/projects/{project.slug}/import/").content.decode()
    assert "4 bad lines left out" in history
    detail_url = f"/projects/{project.slug}/import/{batch.id}/"
    detail = client.get(detail_url).content.decode()
    assert "4 bad lines left out; the other lines were imported" in detail and "Nothing was imported" not in detail
    assert "<code>mixed.jsonl.gz:2</code>: <code>responses</code>: this binary project needs 2 responses per item, got 1" in detail
    assert "<code>mixed.jsonl.gz:7</code>: <code>id</code>: repeats the id of line 1" in detail
    assert client_for(member).get(detail_url).status_code == 403
    assert client_for(outsider).get(detail_url).status_code == 404


def test_the_browser_import_still_refuses_the_whole_file_unticked(project, client_for, owner, django_capture_on_commit_callbacks):
    upload = SimpleUploadedFile("mixed.jsonl", "".join(line + "\n" for line in mixed_lines()).encode())
    with django_capture_on_commit_callbacks(execute=True):
        client_for(owner).post(f"/projects/{project.slug}/import/", {"file": upload})
    assert ImportBatch.objects.get(project=project).status == "failed"
    assert not Item.objects.filter(project=project).exists()


def test_the_api_skips_bad_records_when_asked_and_names_each(project, api_for, owner, member, outsider):
    url = f"/api/projects/{project.slug}/items/import/"
    items = [GOOD[0], {"id": "short", "prompt": "q", "responses": ["one"]}, GOOD[1], {"id": "x", "prompt": 5, "responses": ["a", "b"]}]
    assert api_for(member).post(url, {"items": items, "skip_invalid": True}, format="json").status_code == 403
    assert api_for(outsider).post(url, {"items": items, "skip_invalid": True}, format="json").status_code == 404

    refused = api_for(owner).post(url, {"items": items}, format="json")
    assert refused.status_code == 400 and not Item.objects.filter(project=project).exists()

    response = api_for(owner).post(url, {"items": items, "skip_invalid": True}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["items_created"], body["lines_invalid"], body["skip_invalid"]) == ("succeeded", 2, 2, True)
    assert [(e["line"], e["field"]) for e in body["errors"]] == [(2, "responses"), (4, "prompt")]
    assert set(Item.objects.filter(project=project).values_list("external_id", flat=True)) == {"ok-0", "ok-1"}

    bad = api_for(owner).post(url, {"items": items, "skip_invalid": "perhaps"}, format="json")
    assert bad.status_code == 400 and "skip_invalid" in bad.json()


def test_an_api_upload_carries_the_flag_to_the_worker(project, api_for, owner, django_capture_on_commit_callbacks):
    upload = SimpleUploadedFile("mixed.jsonl", "".join(line + "\n" for line in mixed_lines()).encode())
    with django_capture_on_commit_callbacks(execute=True):
        queued = api_for(owner).post(f"/api/projects/{project.slug}/items/import/", {"file": upload, "skip_invalid": "true"}, format="multipart")
    assert queued.status_code == 202 and queued.json()["skip_invalid"] is True
    done = api_for(owner).get(f"/api/projects/{project.slug}/imports/{queued.json()['id']}/").json()
    assert (done["status"], done["items_created"], done["lines_invalid"]) == ("succeeded", 3, 4)
    assert [(e["file"], e["line"], e["field"]) for e in done["errors"]] == [("mixed.jsonl", n, f) for n, f in EXPECTED]


def test_a_file_of_nothing_but_bad_lines_is_still_a_failure(db, tmp_path, capsys):
    path = write(tmp_path / "all-bad.jsonl", ["{nope", json.dumps({"id": "a", "prompt": "q", "responses": ["one"]})])
    with pytest.raises(CommandError):
        call_command("import_items", str(path), project="empty", create=True, kind="binary", skip_invalid=True)
    err = capsys.readouterr().err
    assert f"{path}:1: line: is not valid JSON" in err and "every line was bad; nothing imported" in err
    assert not Project.objects.filter(slug="empty").exists()  # no empty project left behind
