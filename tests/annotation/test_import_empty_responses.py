"""An empty response is a real answer in preference data (the HH-RLHF sample has four): it imports
from every TRL shape and the native format, raters see "(empty response)" in its place, and the
exports write it back as "". A response that is missing or not a string is still refused."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from annotation.exports import snapshot_create
from annotation.exports.build import snapshot_build
from annotation.importers import ImportFailed, import_stream
from annotation.models import Item

pytestmark = pytest.mark.django_db


def jsonl(*records) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def run(project, data: bytes, **options):
    return import_stream(project=project, stream=io.BytesIO(data), filename="pairs.jsonl", **options)


def texts(item: Item) -> list[str]:
    return list(item.candidates.order_by("position").values_list("text", flat=True))


def test_it_imports_an_empty_chosen_or_rejected_answer_in_every_trl_shape(project):
    shared = "\n\nHuman: Say something rude.\n\nAssistant:"
    batch = run(project, jsonl(
        {"prompt": "Explicit?", "chosen": "", "rejected": "No way."},
        {"chosen": shared, "rejected": shared + " You fool."},  # the HH shape: the turn ends at the marker
        {"chosen": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello."}],
         "rejected": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}]},
        {"id": "native", "prompt": "q", "responses": [{"text": ""}, "b"]},
    ), as_judgments=False)

    assert (batch.status, batch.items_created) == ("succeeded", 4)
    items = list(Item.objects.filter(project=project).order_by("id"))
    assert texts(items[0]) == ["", "No way."]
    assert items[1].prompt == [{"role": "user", "content": "Say something rude."}] and texts(items[1]) == ["", "You fool."]
    assert texts(items[2]) == ["Hello.", ""]
    assert texts(items[3]) == ["", "b"]


@pytest.mark.parametrize(("record", "field"), [
    ({"prompt": "q", "rejected": "b"}, "chosen"),
    ({"prompt": "q", "chosen": None, "rejected": "b"}, "chosen"),
    ({"prompt": "q", "chosen": "a", "rejected": 3}, "rejected"),
    ({"id": "n", "prompt": "q", "responses": [{"model": "m"}, "b"]}, "responses[0].text"),
    ({"id": "n", "prompt": "q", "responses": [None, "b"]}, "responses[0]"),
])
def test_it_still_refuses_a_missing_or_non_string_response(project, record, field):
    with pytest.raises(ImportFailed) as refused:
        run(project, jsonl(record))
    assert [(e["line"], e["field"]) for e in refused.value.errors] == [(1, field)]
    assert not Item.objects.filter(project=project).exists()


def test_it_shows_raters_a_placeholder_for_an_empty_response(client_for, member, project):
    run(project, jsonl({"prompt": "Anything to add?", "chosen": "", "rejected": "Yes, <b>this</b>."}))
    html = client_for(member).get(f"/projects/{project.slug}/label/").content.decode()
    cards = html.split('class="candidate card"')[1:]
    assert len(cards) == 2
    empty = [c for c in cards if "(empty response)" in c]
    assert len(empty) == 1 and 'class="muted empty-response"' in empty[0]
    other = [c for c in cards if c not in empty]
    assert "(empty response)" not in other[0] and "this" in other[0]


def test_it_exports_an_empty_response_back_as_an_empty_string(make_project):
    from annotation.kinds import Kind

    project = make_project(Kind.BINARY)
    records = [{"prompt": f"Question {i}?", "chosen": "" if i % 2 else f"Answer {i}.", "rejected": f"Wrong {i}."} for i in range(8)]
    run(project, jsonl(*records), as_judgments=True)
    snapshot = snapshot_build(snapshot_id=snapshot_create(project=project, options={"test_share": 0.25}, enqueue=False).id)
    assert snapshot.status == "ready", snapshot.error
    rows = [json.loads(line) for split in ("train", "test")
            for line in (Path(snapshot.path) / "preference" / f"{split}.jsonl").read_text().splitlines()]
    by_prompt = {(r["prompt"] if isinstance(r["prompt"], str) else r["prompt"][-1]["content"]): r for r in rows}
    assert len(by_prompt) == 8
    assert by_prompt["Question 1?"]["chosen"] in ("", [{"role": "assistant", "content": ""}])
    assert by_prompt["Question 1?"]["rejected"] in ("Wrong 1.", [{"role": "assistant", "content": "Wrong 1."}])
    assert by_prompt["Question 2?"]["chosen"] in ("Answer 2.", [{"role": "assistant", "content": "Answer 2."}])
