"""Prompt sets: prompts without responses for online RL (PPO, RLOO, GRPO), imported as usual,
never handed to raters, and exported with every other prompt in the snapshot's `prompts` format."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from annotation.assignment import lease_next
from annotation.exports import snapshot_create
from annotation.exports.build import snapshot_build
from annotation.exports.split import split_of
from annotation.importers import ImportFailed, import_stream
from annotation.kinds import Kind
from annotation.models import Candidate, Item, Judgment
from annotation.projects import project_update


def run(project, data: bytes, filename: str = "prompts.jsonl"):
    return import_stream(project=project, stream=io.BytesIO(data), filename=filename)


def jsonl(*records) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def rows(snapshot, split):
    path = Path(snapshot.path) / "prompts" / f"{split}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def prompt_set(make_project):
    return make_project(Kind.BINARY, prompt_set=True)


def test_it_imports_prompts_without_responses_into_a_prompt_set(prompt_set):
    batch = run(prompt_set, jsonl({"id": "a", "prompt": "Why is the sky blue?"}, {"prompt": [{"role": "user", "content": "Hi"}]},
                                  {"id": "c", "prompt": "Name a river.", "responses": []}))
    assert batch.items_created == 3
    assert Candidate.objects.filter(item__project=prompt_set).count() == 0
    # CSV with a prompt column alone
    batch = run(prompt_set, b"id,prompt\nd,Count to three.\n", filename="prompts.csv")
    assert batch.items_created == 1
    assert Item.objects.get(project=prompt_set, external_id="d").prompt == "Count to three."


def test_it_still_checks_responses_a_prompt_set_item_does_have(prompt_set):
    with pytest.raises(ImportFailed) as failed:
        run(prompt_set, jsonl({"id": "a", "prompt": "q", "responses": ["only one"]}))
    assert failed.value.errors[0]["field"] == "responses" and "needs 2 responses" in failed.value.errors[0]["message"]


def test_it_refuses_prompts_alone_in_a_project_that_is_not_a_prompt_set(project):
    with pytest.raises(ImportFailed) as failed:
        run(project, jsonl({"id": "a", "prompt": "q"}))
    error = failed.value.errors[0]
    assert (error["line"], error["field"]) == (1, "responses")
    assert "prompt set" in error["message"]
    assert not Item.objects.filter(project=project).exists()


def test_it_hands_raters_nothing_from_a_prompt_set(prompt_set, member, api_for):
    run(prompt_set, jsonl(*({"id": f"p{i}", "prompt": f"prompt {i}"} for i in range(3))))
    assert lease_next(project=prompt_set, rater=member) is None
    r = api_for(member).post(reverse("api-rater-next", kwargs={"slug": prompt_set.slug}))
    assert r.status_code == 204


def test_it_keeps_a_prompt_set_with_bare_prompts_a_prompt_set(prompt_set):
    run(prompt_set, jsonl({"id": "a", "prompt": "q"}))
    with pytest.raises(ValidationError) as failed:
        project_update(project=prompt_set, fields={"prompt_set": False})
    assert "prompt_set" in failed.value.message_dict


def test_it_exports_every_prompt_once_split_by_prompt_judged_or_not(project, add_items, member, owner):
    items = add_items(project, 30)
    # Two items share a prompt: it is exported once.
    items[1].prompt = items[0].prompt
    items[1].save()
    for item in items[:5]:
        Judgment.objects.create(project=project, item=item, rater=member, kind=project.kind, source="human", value={"winner": 0},
                                display_order=[0, 1], duration_ms=1000)
    snapshot = snapshot_build(snapshot_id=snapshot_create(project=project, options={"test_share": 0.3}, created_by=owner, enqueue=False).id)

    assert snapshot.status == "ready", snapshot.error
    train, test = rows(snapshot, "train"), rows(snapshot, "test")
    prompts = [r["prompt"] for r in train + test]
    assert sorted(prompts) == sorted({i.prompt for i in items})  # all 29 distinct prompts, judged or not
    assert all(split_of(r["prompt"], seed=0, test_share=0.3) == "train" for r in train)
    assert all(split_of(r["prompt"], seed=0, test_share=0.3) == "test" for r in test) and test
    assert snapshot.manifest["counts"]["prompts"] == {"train": len(train), "test": len(test)}
    assert "prompts/train.parquet" in snapshot.manifest["files"]
    assert "`prompts/`" in (Path(snapshot.path) / "README.md").read_text()


def test_it_exports_a_chat_prompt_set_in_conversational_form(prompt_set, owner):
    run(prompt_set, jsonl({"id": "a", "prompt": "plain text"}, {"id": "b", "prompt": [{"role": "user", "content": "chat"}]}))
    snapshot = snapshot_build(snapshot_id=snapshot_create(project=prompt_set, options={"test_share": 0.0}, created_by=owner, enqueue=False).id)
    assert snapshot.status == "ready", snapshot.error
    assert sorted(rows(snapshot, "train"), key=str) == sorted(
        [{"prompt": [{"role": "user", "content": "plain text"}]}, {"prompt": [{"role": "user", "content": "chat"}]}], key=str)
    assert rows(snapshot, "test") == []
    # The online recipes read exactly this file.
    from training.rl.models import load_prompts

    assert len(load_prompts(snapshot.path, "train")) == 2
