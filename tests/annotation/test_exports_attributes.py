"""Snapshots of projects that ask questions: answers in the raw export (every version), the
attributes format (HelpSteer2's layout, means and counts, split by prompt, Parquet = JSONL),
per-label counts, and the card listing the questions."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from annotation import questions
from annotation.exports import snapshot_create
from annotation.exports.build import snapshot_build
from annotation.kinds import Kind
from annotation.models import Judgment, Membership
from annotation.my_work import judgment_change

ASKED = [
    {"key": "helpfulness", "type": "scale", "per": "response", "min": 0, "max": 4, "required": True, "help": "Does it help?"},
    {"key": "verbosity", "type": "scale", "per": "response", "min": 0, "max": 4},
    {"key": "overall", "type": "scale", "per": "item", "min": 1, "max": 5},
    {"key": "harm", "type": "labels", "per": "item", "choices": ["violence", "self_harm"]},
    {"key": "flags", "type": "labels", "per": "response", "choices": ["wrong", "rude"]},
    {"key": "note", "type": "text"},
]


def build(project, **options):
    snapshot = snapshot_create(project=project, options=options, created_by=None, enqueue=False)
    built = snapshot_build(snapshot_id=snapshot.id)
    assert built.status == "ready", built.error
    return built


def rows(snapshot, fmt, split):
    path = Path(snapshot.path) / fmt / f"{split}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def both(snapshot, fmt):
    return rows(snapshot, fmt, "train") + rows(snapshot, fmt, "test")


def judge(project, item, rater, answers, *, source="human", winner=0):
    return Judgment.objects.create(
        project=project, item=item, rater=rater, kind=project.kind, source=source, value={"winner": winner},
        answers=answers, display_order=[0, 1], duration_ms=1000,
    )


@pytest.fixture
def asking(make_project):
    return make_project(Kind.BINARY, questions=questions.validate_questions(ASKED), edit_window_minutes=60)


@pytest.fixture
def three(make_user, asking):
    return [make_user(f"r{i}") for i in range(3)]


def test_it_averages_each_scale_per_response_in_helpsteer_layout_split_by_prompt(asking, add_items, three, make_user):
    items = add_items(asking, 30)
    for n, item in enumerate(items):
        judge(asking, item, three[0], {"helpfulness": [4, 1], "verbosity": [2, None], "overall": 3})
        judge(asking, item, three[1], {"helpfulness": [3, 0]})
        if n == 0:
            judge(asking, item, three[2], {"helpfulness": [0, 0], "verbosity": [4, 4]}, source="ai")  # not a counted source
    paused = make_user("paused")
    Membership.objects.create(project=asking, user=paused, role="rater", paused=True)
    judge(asking, items[1], paused, {"helpfulness": [0, 4]})  # a paused rater's answers stay out

    snapshot = build(asking, test_share=0.3, seed=1)
    attrs = both(snapshot, "attributes")
    assert len(attrs) == 60  # one row per (prompt, response)
    first = next(r for r in attrs if r["item_id"] == items[0].external_id and r["position"] == 0)
    assert list(first) == ["prompt", "response", "helpfulness", "verbosity", "helpfulness_count", "verbosity_count", "item_id", "position", "model"]
    assert first["prompt"] == "Question 0?" and first["response"] == "Answer 0 to p-00000"
    assert first["helpfulness"] == 3.5 and first["helpfulness_count"] == 2
    assert first["verbosity"] == 2.0 and first["verbosity_count"] == 1
    second = next(r for r in attrs if r["item_id"] == items[1].external_id and r["position"] == 1)
    assert second["helpfulness"] == 0.5 and second["verbosity"] is None and second["verbosity_count"] == 0
    assert "overall" not in first  # per-item scales are not a response's attribute

    # Split by prompt, the same side as the preference rows of that prompt.
    train = {r["prompt"] for r in rows(snapshot, "attributes", "train")}
    test = {r["prompt"] for r in rows(snapshot, "attributes", "test")}
    assert train and test and not train & test
    assert {r["prompt"] for r in rows(snapshot, "preference", "test")} == test

    # Parquet holds the same rows, with the columns in the same order.
    for split in ("train", "test"):
        table = pq.read_table(Path(snapshot.path) / "attributes" / f"{split}.parquet")
        assert table.column_names == list(first)
        assert table.to_pylist() == rows(snapshot, "attributes", split)
    assert snapshot.manifest["counts"]["attributes"] == {"train": len(rows(snapshot, "attributes", "train")), "test": len(rows(snapshot, "attributes", "test"))}
    assert "attributes/train.parquet" in snapshot.manifest["files"]

    # With the AI source counted, its answers join the mean.
    with_ai = build(asking, sources=["human", "import", "ai"])
    first_ai = next(r for r in both(with_ai, "attributes") if r["item_id"] == items[0].external_id and r["position"] == 0)
    assert first_ai["helpfulness_count"] == 3 and first_ai["helpfulness"] == pytest.approx(7 / 3)


def test_it_writes_answers_of_every_version_into_the_raw_judgments(asking, add_items, member):
    (item,) = add_items(asking, 1)
    judgment = judge(asking, item, member, {"helpfulness": [1, 2], "note": "first"})
    judgment_change(judgment=judgment, rater=member, value={"winner": 1}, answers={"helpfulness": [4, 0], "harm": ["violence"]})
    snapshot = build(asking)
    raw = sorted(both(snapshot, "judgments"), key=lambda r: r["version"])
    assert [r["version"] for r in raw] == [1, 2] and [r["latest"] for r in raw] == [False, True]
    assert json.loads(raw[0]["answers"]) == {"helpfulness": [1, 2], "note": "first"}
    assert json.loads(raw[1]["answers"]) == {"harm": ["violence"], "helpfulness": [4, 0]}
    # Only the latest version feeds the attributes.
    attrs = sorted(both(snapshot, "attributes"), key=lambda r: r["position"])
    assert [r["helpfulness"] for r in attrs] == [4.0, 0.0]
    table = pq.read_table(Path(snapshot.path) / "judgments" / "train.parquet") if rows(snapshot, "judgments", "train") else pq.read_table(
        Path(snapshot.path) / "judgments" / "test.parquet")
    assert "answers" in table.column_names


def test_it_counts_each_label_per_item_and_per_response(asking, add_items, three):
    (item,) = add_items(asking, 1)
    judge(asking, item, three[0], {"helpfulness": [1, 1], "harm": ["violence"], "flags": [["wrong"], ["wrong", "rude"]]})
    judge(asking, item, three[1], {"helpfulness": [1, 1], "harm": [], "flags": [[], ["wrong"]]})
    judge(asking, item, three[2], {"helpfulness": [1, 1]})  # answered no label question
    snapshot = build(asking)
    found = {(r["question"], r["position"], r["label"]): (r["count"], r["of"]) for r in both(snapshot, "labels")}
    assert found == {
        ("harm", None, "violence"): (1, 2), ("harm", None, "self_harm"): (0, 2),
        ("flags", 0, "wrong"): (1, 2), ("flags", 0, "rude"): (0, 2),
        ("flags", 1, "wrong"): (2, 2), ("flags", 1, "rude"): (1, 2),
    }
    per_item = next(r for r in both(snapshot, "labels") if r["question"] == "harm")
    assert per_item["response"] is None and per_item["prompt"] == "Question 0?"
    flagged = next(r for r in both(snapshot, "labels") if r["question"] == "flags" and r["position"] == 1)
    assert flagged["response"] == "Answer 1 to p-00000"
    split = "train" if rows(snapshot, "labels", "train") else "test"
    assert pq.read_table(Path(snapshot.path) / "labels" / f"{split}.parquet").to_pylist() == rows(snapshot, "labels", split)


def test_it_lists_the_questions_and_new_formats_on_the_card(asking, add_items, member):
    (item,) = add_items(asking, 1)
    judge(asking, item, member, {"helpfulness": [2, 3]})
    card = (Path(build(asking).path) / "README.md").read_text()
    assert "## Questions raters answered beside the judgment" in card
    # Names are escaped for Markdown (annotation.exports.card._name).
    assert "- helpfulness: scale 0\\-4 per response, required (raters saw “helpfulness”) — Does it help?" in card
    assert "- harm: labels \\(violence, self\\_harm\\) per item, optional" in card
    assert "- note: text up to 500 characters per item, optional" in card
    assert "| `attributes/` |" in card and "| `labels/` |" in card and "`<key>_count`" in card


def test_it_keeps_the_folders_of_a_project_without_questions(make_project, add_items, member):
    project = make_project(Kind.BINARY)
    (item,) = add_items(project, 1)
    Judgment.objects.create(project=project, item=item, rater=member, kind=project.kind, source="human", value={"winner": 0}, display_order=[0, 1])
    snapshot = build(project)
    assert set(snapshot.manifest["counts"]) == {"preference", "unpaired", "sft", "judgments", "prompts"}
    assert not (Path(snapshot.path) / "attributes").exists() and not (Path(snapshot.path) / "labels").exists()
    assert json.loads(both(snapshot, "judgments")[0]["answers"]) == {}
    assert "Questions raters answered" not in (Path(snapshot.path) / "README.md").read_text()


def test_it_serves_the_new_files_through_the_download_routes_to_researchers_only(asking, add_items, member, owner, researcher, outsider, client_for, api_for):
    (item,) = add_items(asking, 1)
    judge(asking, item, member, {"helpfulness": [2, 3], "flags": [["rude"], []]})
    snapshot = build(asking, test_share=0.0)
    page = f"/projects/{asking.slug}/datasets/v{snapshot.version}/files/attributes/train.jsonl"
    api = f"/api/projects/{asking.slug}/datasets/{snapshot.version}/files/labels/train.parquet"
    for user in (owner, researcher):
        got = client_for(user).get(page)
        assert got.status_code == 200 and json.loads(b"".join(got.streaming_content).splitlines()[0])["helpfulness"] == 2.0
        assert api_for(user).get(api).status_code == 200
    assert client_for(member).get(page).status_code == 403 and api_for(member).get(api).status_code == 403
    assert client_for(outsider).get(page).status_code == 404 and api_for(outsider).get(api).status_code == 404
    detail = api_for(owner).get(f"/api/projects/{asking.slug}/datasets/{snapshot.version}/").json()
    assert {"attributes/train.jsonl", "labels/test.parquet"} <= set(detail["files"])
