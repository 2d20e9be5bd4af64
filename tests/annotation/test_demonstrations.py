"""Demonstrations: raters write a response or rewrite a candidate, alongside or instead of their
judgment; snapshots export them as sft rows with their source, and a rewrite as a pair."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from annotation.assignment import lease_next
from annotation.exports import snapshot_create
from annotation.exports.build import snapshot_build
from annotation.judgments import judgment_submit
from annotation.models import Assignment, Demonstration, Item, Project
from tests.annotation.htmlcheck import executable_parts

pytestmark = pytest.mark.django_db


def demo_url(project, lease):
    return f"/projects/{project.slug}/label/{lease.id}/demonstration/"


def post(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


@pytest.fixture
def writing(project):
    project.demonstrations = Project.Demonstrations.ALONGSIDE
    project.save()
    return project


def test_a_rewrite_is_stored_with_the_original_it_came_from(client_for, writing, add_items, member):
    add_items(writing, 1)
    lease = lease_next(project=writing, rater=member)
    client = client_for(member)
    response = post(client, demo_url(writing, lease), {"text": "A much better answer.", "source_position": 1})
    assert response.status_code == 200 and response.json()["rewrite"] is True
    demo = Demonstration.objects.get()
    assert (demo.source_position, demo.text) == (1, "A much better answer.")
    assert demo.source_text == Item.objects.get().candidates.get(position=1).text
    # Written again (before or after the judgment), it replaces the earlier one.
    judgment_submit(assignment=lease, rater=member, value={"winner": 1})
    lease.refresh_from_db()
    assert post(client, demo_url(writing, lease), {"text": "From scratch.", "source_position": None}).status_code == 200
    demo = Demonstration.objects.get()
    assert demo.source_position is None and demo.source_text == "" and demo.text == "From scratch."


def test_it_refuses_what_does_not_fit_by_field(client_for, writing, project, add_items, member, owner):
    add_items(writing, 1)
    lease = lease_next(project=writing, rater=member)
    client = client_for(member)
    empty = post(client, demo_url(writing, lease), {"text": "  "})
    assert empty.status_code == 400 and empty.json()["field"] == "text"
    same = post(client, demo_url(writing, lease), {"text": Item.objects.get().candidates.get(position=0).text, "source_position": 0})
    assert same.status_code == 400 and "same as the response" in same.json()["error"]
    missing = post(client, demo_url(writing, lease), {"text": "x", "source_position": 9})
    assert missing.status_code == 400 and missing.json()["field"] == "source_position"
    finish = post(client, demo_url(writing, lease), {"text": "x", "finish": True})
    assert finish.status_code == 403  # this project takes one only alongside a judgment
    assert post(client_for(owner), demo_url(writing, lease), {"text": "x"}).status_code == 404  # not their lease
    writing.demonstrations = Project.Demonstrations.OFF
    writing.save()
    assert post(client, demo_url(writing, lease), {"text": "x"}).status_code == 403
    assert not Demonstration.objects.exists()


def test_instead_of_a_judgment_it_closes_the_lease_and_frees_the_slot(client_for, writing, add_items, member):
    writing.demonstrations = Project.Demonstrations.INSTEAD
    writing.save()
    add_items(writing, 1)
    lease = lease_next(project=writing, rater=member)
    response = post(client_for(member), demo_url(writing, lease), {"text": "Mine.", "finish": True})
    assert response.status_code == 200 and response.json()["finished"] is True
    assert Assignment.objects.get(id=lease.id).status == Assignment.Status.SUBMITTED
    assert Item.objects.get().taken == 0  # another rater can still judge the item
    assert lease_next(project=writing, rater=member) is None


def test_the_page_offers_the_editor_only_where_the_project_takes_demonstrations(client_for, writing, add_items, member):
    add_items(writing, 1)
    page = client_for(member).get(f"/projects/{writing.slug}/label/").content.decode()
    assert 'id="demo-editor"' in page and "js/demonstration.js" in page and "data-source-text" in page
    writing.demonstrations = Project.Demonstrations.OFF
    writing.save()
    page = client_for(member).get(f"/projects/{writing.slug}/label/").content.decode()
    assert 'id="demo-editor"' not in page and "js/demonstration.js" not in page


def test_the_preview_uses_the_safe_renderer(client_for, writing, member, outsider):
    response = post(client_for(member), f"/projects/{writing.slug}/label/preview/", {"text": "**bold** <script>alert(1)</script><img src=x onerror=alert(2)>"})
    assert response.status_code == 200
    html = response.json()["html"]
    assert "<strong>bold</strong>" in html
    assert executable_parts(html) == []
    assert post(client_for(outsider), f"/projects/{writing.slug}/label/preview/", {"text": "x"}).status_code == 404


def test_snapshots_export_demonstrations_with_their_source_and_rewrites_as_pairs(writing, add_items, member, owner):
    add_items(writing, 2)
    first = lease_next(project=writing, rater=member)
    judgment_submit(assignment=first, rater=member, value={"winner": 0})
    Demonstration.objects.create(project=writing, item=first.item, rater=member, text="Rewritten.", source_position=0, source_text="Answer 0 original")
    second = lease_next(project=writing, rater=member)
    Demonstration.objects.create(project=writing, item=second.item, rater=member, text="Written from scratch.")

    snapshot = snapshot_build(snapshot_id=snapshot_create(project=writing, options={"test_share": 0.0}, created_by=owner, enqueue=False).id)
    folder = Path(snapshot.path)
    sft = [json.loads(line) for line in (folder / "sft" / "train.jsonl").read_text().splitlines()]
    assert sorted((r["source"], r["completion"]) for r in sft) == [
        ("agreed_best", f"Answer 0 to {first.item.external_id}"), ("rewrite", "Rewritten."), ("written", "Written from scratch.")
    ]
    pairs = [json.loads(line) for line in (folder / "preference" / "train.jsonl").read_text().splitlines()]
    assert {"prompt": first.item.prompt, "chosen": "Rewritten.", "rejected": "Answer 0 original"} in pairs
    assert len(pairs) == 2  # the judgment's pair and the rewrite's
    assert "demonstrations: 1 written, 1 rewrites" in (folder / "README.md").read_text()
    import pyarrow.parquet as pq

    assert pq.read_table(folder / "sft" / "train.parquet").column("source").to_pylist().count("rewrite") == 1
    without = snapshot_build(snapshot_id=snapshot_create(project=writing, options={"test_share": 0.0, "keep_demonstrations": False}, created_by=owner, enqueue=False).id)
    assert without.manifest["counts"]["sft"]["train"] == 1
