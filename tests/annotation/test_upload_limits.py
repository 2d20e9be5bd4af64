"""Unbounded input at import and in request bodies (issue 12, point 2): a gzip bomb, a file
without line breaks, a text past the per-text limit and a request body past
DATA_UPLOAD_MAX_MEMORY_SIZE each fail with a message naming the limit and the line, in
constant memory, and store nothing."""
from __future__ import annotations

import gzip
import io
import json
import tracemalloc

import pytest
from django.urls import reverse

from annotation.importers import ImportFailed, import_path
from annotation.models import ImportBatch, Item, Judgment

pytestmark = pytest.mark.django_db

MiB = 1024 * 1024


def gzip_bomb(path, *, megabytes: int, unit: bytes) -> int:
    """`megabytes` MiB of `unit` repeated, gzipped on the fly (a few tens of KB on disk)."""
    block = unit * (MiB // len(unit))
    with gzip.open(path, "wb", compresslevel=9) as out:
        for _ in range(megabytes):
            out.write(block)
    return path.stat().st_size


def import_measured(project, path):
    """Import the file; return (the ImportFailed, the peak of Python's allocations in bytes)."""
    tracemalloc.start()
    try:
        with pytest.raises(ImportFailed) as failed:
            import_path(project=project, path=path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return failed.value, peak


def test_it_stops_a_gzip_bomb_without_line_breaks_at_the_line_limit_in_constant_memory(project, settings, tmp_path):
    settings.ARBITER_IMPORT_MAX_LINE_BYTES = 1 * MiB
    path = tmp_path / "bomb.jsonl.gz"
    size = gzip_bomb(path, megabytes=96, unit=b'{"prompt": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')
    assert size < 1 * MiB  # 96 MiB once decompressed
    failed, peak = import_measured(project, path)
    assert failed.errors == [
        {"line": 1, "field": "line", "message": f"is longer than {1 * MiB} bytes (ARBITER_IMPORT_MAX_LINE_BYTES); one record must fit on a line of that size"}
    ]
    assert peak < 8 * MiB, f"peak {peak / MiB:.1f} MiB while reading a 96 MiB line"
    assert not Item.objects.exists()
    assert ImportBatch.objects.get().status == ImportBatch.Status.FAILED


def test_it_stops_a_gzip_bomb_of_short_lines_at_the_size_limit(project, settings, tmp_path):
    settings.ARBITER_IMPORT_MAX_BYTES = 8 * MiB
    path = tmp_path / "bomb.jsonl.gz"
    line = b" " * 1023 + b"\n"  # blank lines: cheap to read, so the test spends its time on the bomb
    gzip_bomb(path, megabytes=96, unit=line)
    failed, peak = import_measured(project, path)
    error = failed.errors[-1]
    assert error["field"] == "file" and "ARBITER_IMPORT_MAX_BYTES" in error["message"] and str(8 * MiB) in error["message"]
    # The line where the limit was passed: right after the first 8 MiB of lines.
    assert 8 * 1024 < error["line"] <= 8 * 1024 + 256
    assert peak < 32 * MiB, f"peak {peak / MiB:.1f} MiB"
    assert not Item.objects.exists()


def test_it_names_the_line_that_is_too_long_in_a_plain_file(project, settings, tmp_path):
    settings.ARBITER_IMPORT_MAX_LINE_BYTES = 64 * 1024
    good = json.dumps({"id": "a", "prompt": "p", "responses": ["x", "y"]})
    long = json.dumps({"id": "b", "prompt": "p" * 100_000, "responses": ["x", "y"]})
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join([good, good.replace('"a"', '"c"'), long, good.replace('"a"', '"d"')]) + "\n")
    with pytest.raises(ImportFailed) as failed:
        import_path(project=project, path=path)
    assert failed.value.errors[-1]["line"] == 3 and failed.value.errors[-1]["field"] == "line"
    assert not Item.objects.exists()


def test_it_bounds_a_csv_line_too(project, settings, tmp_path):
    settings.ARBITER_IMPORT_MAX_LINE_BYTES = 64 * 1024
    path = tmp_path / "items.csv"
    path.write_text("id,prompt,response_1,response_2\na,hello,x,y\nb,\"" + "q" * 200_000 + "\",x,y\n")
    with pytest.raises(ImportFailed) as failed:
        import_path(project=project, path=path)
    assert failed.value.errors[-1]["line"] == 3 and "ARBITER_IMPORT_MAX_LINE_BYTES" in failed.value.errors[-1]["message"]
    assert not Item.objects.exists()


def test_it_reports_an_uploaded_bomb_on_the_batch_through_the_api(api_for, owner, member, outsider, project, settings, tmp_path, django_capture_on_commit_callbacks):
    settings.ARBITER_IMPORT_MAX_LINE_BYTES = 1 * MiB
    path = tmp_path / "bomb.jsonl.gz"
    gzip_bomb(path, megabytes=32, unit=b"a")
    url = reverse("api-item-import", kwargs={"slug": project.slug})
    for user, status in ((member, 403), (outsider, 404)):
        with path.open("rb") as f:
            assert api_for(user).post(url, {"file": f}, format="multipart").status_code == status
    with path.open("rb") as f, django_capture_on_commit_callbacks(execute=True):
        r = api_for(owner).post(url, {"file": f}, format="multipart")
    assert r.status_code == 202, r.content
    batch = api_for(owner).get(reverse("api-import-detail", kwargs={"slug": project.slug, "pk": r.json()["id"]})).json()
    assert batch["status"] == "failed"
    assert batch["errors"][0]["line"] == 1 and "ARBITER_IMPORT_MAX_LINE_BYTES" in batch["errors"][0]["message"]
    assert not Item.objects.exists()


@pytest.mark.parametrize(
    "record, field",
    [
        ({"prompt": "p", "responses": ["x" * 1001, "y"]}, "responses[0]"),
        ({"prompt": "p", "responses": [{"text": "x" * 1001}, "y"]}, "responses[0].text"),
        ({"prompt": "p" * 1001, "responses": ["x", "y"]}, "prompt"),
        ({"prompt": [{"role": "user", "content": "p" * 1001}], "responses": ["x", "y"]}, "prompt[0].content"),
        ({"prompt": "p", "chosen": "c" * 1001, "rejected": "r"}, "chosen"),
    ],
)
def test_it_refuses_a_text_past_the_per_text_limit(api_for, owner, project, settings, record, field):
    settings.ARBITER_IMPORT_MAX_TEXT_CHARS = 1000
    r = api_for(owner).post(reverse("api-item-import", kwargs={"slug": project.slug}), {"items": [record]}, format="json")
    assert r.status_code == 400, r.content
    error = r.json()["errors"][0]
    assert error["field"] == field and "1001 characters" in error["message"] and "ARBITER_IMPORT_MAX_TEXT_CHARS" in error["message"]
    assert not Item.objects.exists()


def test_it_answers_a_request_body_over_the_limit_with_json(api_for, client_for, owner, member, project, add_items, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = json.dumps({"items": [{"prompt": "p" * 20_000, "responses": ["a", "b"]}]})
    r = api_for(owner).post(reverse("api-item-import", kwargs={"slug": project.slug}), body, content_type="application/json")
    assert r.status_code == 400
    assert r["Content-Type"] == "application/json"
    assert r.json()["code"] == "request_too_big" and r.json()["limit"] == 10_000
    assert not Item.objects.exists()

    add_items(project, 1)
    client = client_for(member)
    assignment = client.get(f"/projects/{project.slug}/label/next/").json()["assignment"]
    big = json.dumps({"value": {"winner": 0}, "rationale": "r" * 20_000})
    r = client.post(f"/projects/{project.slug}/label/{assignment}/submit/", big, content_type="application/json")
    assert r.status_code == 400 and r.json()["code"] == "request_too_big"
    # A form post of a browser page: still a 400 that says why, not a server error.
    r = client.post(f"/projects/{project.slug}/label/{assignment}/submit/", {"winner": "0", "rationale": "r" * 20_000})
    assert r.status_code == 400 and b"DATA_UPLOAD_MAX_MEMORY_SIZE" in r.content
    assert not Judgment.objects.exists()


def test_it_keeps_accepting_a_file_upload_larger_than_the_body_limit(api_for, owner, project, settings, django_capture_on_commit_callbacks):
    """File parts stream to disk and do not count against DATA_UPLOAD_MAX_MEMORY_SIZE."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    lines = b"".join(json.dumps({"id": f"i{i}", "prompt": "p" * 100, "responses": ["a", "b"]}).encode() + b"\n" for i in range(300))
    upload = io.BytesIO(lines)
    upload.name = "items.jsonl"
    with django_capture_on_commit_callbacks(execute=True):
        r = api_for(owner).post(reverse("api-item-import", kwargs={"slug": project.slug}), {"file": upload}, format="multipart")
    assert r.status_code == 202, r.content
    assert Item.objects.filter(project=project).count() == 300


def test_it_stops_an_upload_past_the_import_limit_before_it_is_written_whole(api_for, client_for, owner, project, settings, monkeypatch):
    """The file part is counted on its way to disk (config/request_limits.py): past
    ARBITER_IMPORT_MAX_BYTES the upload stops, with a message naming the limit, and at most one
    chunk past it ever reached the temporary file."""
    from django.core.files.uploadhandler import TemporaryFileUploadHandler

    settings.ARBITER_IMPORT_MAX_BYTES = 200_000
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024  # straight to a temporary file, as a large upload goes
    written = []
    original = TemporaryFileUploadHandler.receive_data_chunk
    monkeypatch.setattr(TemporaryFileUploadHandler, "receive_data_chunk", lambda self, raw, start: written.append(len(raw)) or original(self, raw, start))
    lines = b"".join(json.dumps({"id": f"i{i}", "prompt": "p" * 100, "responses": ["a", "b"]}).encode() + b"\n" for i in range(20_000))
    assert len(lines) > 2 * MiB
    upload = io.BytesIO(lines)
    upload.name = "items.jsonl"
    r = api_for(owner).post(reverse("api-item-import", kwargs={"slug": project.slug}), {"file": upload}, format="multipart")
    assert r.status_code == 400 and r.json()["code"] == "upload_too_big"
    assert "items.jsonl is larger than 200000 bytes (ARBITER_IMPORT_MAX_BYTES)" in r.json()["detail"]
    assert sum(written) <= 200_000  # the chunk that crossed the limit was never written
    assert Item.objects.filter(project=project).count() == 0 and not ImportBatch.objects.filter(project=project).exists()
    upload.seek(0)
    page = client_for(owner).post(f"/projects/{project.slug}/import/", {"file": upload})
    assert page.status_code == 400 and "ARBITER_IMPORT_MAX_BYTES" in page.content.decode()
