"""Import service: every format, the error report, atomicity, idempotency, --as-judgments, gzip."""
from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest

from annotation.importers import ImportFailed, import_path, import_stream, stable_id, transcript_messages
from annotation.kinds import Kind
from annotation.models import Candidate, ImportBatch, Item, Judgment

HH_SAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "hh-rlhf" / "harmless-base-test.jsonl.gz"


def jsonl(*records) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def run(project, data: bytes, filename: str = "items.jsonl", **options):
    return import_stream(project=project, stream=io.BytesIO(data), filename=filename, **options)


def texts(item: Item) -> list[str]:
    return list(item.candidates.order_by("position").values_list("text", flat=True))


def test_it_imports_native_jsonl_with_text_and_chat_prompts_and_gold(project):
    data = jsonl(
        {"id": "p-1", "prompt": "How do I sort a list?", "responses": [{"text": "Use sorted().", "model": "policy"}, {"text": "Bubble sort.", "model": "ref"}], "metadata": {"source": "docs"}},
        {"id": "p-2", "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], "responses": ["Hello!", "Greetings."]},
        {"id": "g-1", "prompt": "2+2?", "responses": ["4", "5"], "gold": {"kind": "binary", "winner": 0}},
    )
    batch = run(project, data)

    assert (batch.status, batch.items_created, batch.items_skipped, batch.lines_read) == ("succeeded", 3, 0, 3)
    first = Item.objects.get(project=project, external_id="p-1")
    assert first.prompt == "How do I sort a list?" and first.metadata == {"source": "docs"} and not first.is_gold
    assert list(first.candidates.values_list("position", "text", "model_name")) == [(0, "Use sorted().", "policy"), (1, "Bubble sort.", "ref")]
    chat = Item.objects.get(project=project, external_id="p-2")
    assert chat.is_chat and chat.prompt[1] == {"role": "user", "content": "Hi"} and texts(chat) == ["Hello!", "Greetings."]
    gold = Item.objects.get(project=project, external_id="g-1")
    assert gold.is_gold and gold.gold == {"winner": 0}  # canonical value, without the "kind" key
    assert first.import_batch_id == batch.id


def test_it_stores_gold_of_each_kind_in_canonical_form(make_project):
    ranking = make_project(Kind.RANKING, ranking_k=3)
    run(ranking, jsonl({"id": "r", "prompt": "q", "responses": ["a", "b", "c"], "gold": {"kind": "ranking", "ranking": [2, [0], 1]}}))
    assert Item.objects.get(project=ranking).gold == {"ranking": [[2], [0], [1]]}
    rating = make_project(Kind.RATING)
    run(rating, jsonl({"id": "s", "prompt": "q", "responses": ["a"], "gold": {"scores": [5]}}))
    assert Item.objects.get(project=rating).gold == {"scores": [5]}


def test_it_reads_csv_with_a_responses_column_and_with_numbered_columns(project, make_project):
    csv_json = (
        'id,prompt,responses,metadata\n'
        'c-1,"Explain, briefly: recursion","[{""text"": ""A function calling itself"", ""model"": ""m1""}, ""Loops""]","{""topic"": ""cs""}"\n'
        'c-2,"[{""role"": ""user"", ""content"": ""Hi there""}]","[""Hello"", ""Hey""]",\n'
    )
    batch = run(project, csv_json.encode(), filename="items.csv")
    assert batch.items_created == 2 and batch.format == "csv"
    first = Item.objects.get(external_id="c-1")
    assert first.prompt == "Explain, briefly: recursion" and first.metadata == {"topic": "cs"}
    assert list(first.candidates.values_list("text", "model_name")) == [("A function calling itself", "m1"), ("Loops", "")]
    assert Item.objects.get(external_id="c-2").prompt == [{"role": "user", "content": "Hi there"}]

    ranking = make_project(Kind.RANKING, ranking_k=3)
    numbered = "id,prompt,response_1,model_1,response_2,model_2,response_3,model_3\nn-1,Pick one,\"multi\nline\",a,two,b,three,c\n"
    run(ranking, numbered.encode(), filename="k.csv")
    item = Item.objects.get(project=ranking)
    assert list(item.candidates.values_list("text", "model_name")) == [("multi\nline", "a"), ("two", "b"), ("three", "c")]


def test_it_turns_explicit_and_conversational_trl_records_into_two_candidate_items(project):
    data = jsonl(
        {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon."},
        {"prompt": [{"role": "user", "content": "Tell a joke"}], "chosen": [{"role": "assistant", "content": "Knock knock."}], "rejected": [{"role": "assistant", "content": "No."}]},
        {
            "chosen": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello! How can I help?"}],
            "rejected": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "What."}],
            "source": "chat-arena",
        },
    )
    batch = run(project, data, filename="prefs.jsonl", fmt="trl")
    assert batch.items_created == 3
    items = list(Item.objects.filter(project=project).order_by("id"))
    assert items[0].prompt == "Capital of France?" and texts(items[0]) == ["Paris.", "Lyon."]
    assert items[1].prompt == [{"role": "user", "content": "Tell a joke"}] and texts(items[1]) == ["Knock knock.", "No."]
    assert items[2].prompt == [{"role": "user", "content": "hi"}] and texts(items[2]) == ["Hello! How can I help?", "What."]
    assert items[2].metadata == {"source": "chat-arena"}
    # No id in the file: a stable content hash, the same on every import.
    assert items[0].external_id == stable_id("Capital of France?", [c for c in items[0].candidates.all()])


def test_it_splits_implicit_prompt_transcripts_at_the_last_shared_assistant_turn(project):
    shared = "\n\nHuman: What is 2+2?\n\nAssistant: 4.\n\nHuman: And times 3?\n\nAssistant:"
    data = jsonl({"chosen": shared + " 12.", "rejected": shared + " 7, I think."})
    run(project, data)
    item = Item.objects.get(project=project)
    assert item.prompt == [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4."},
        {"role": "user", "content": "And times 3?"},
    ]
    assert texts(item) == ["12.", "7, I think."]
    # An explicit prompt written as a transcript becomes messages too.
    assert transcript_messages("\n\nHuman: hi\n\nAssistant: yo") == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]


@pytest.mark.skipif(not HH_SAMPLE.exists(), reason="../shared/data/hh-rlhf sample not present")
def test_it_imports_the_real_hh_rlhf_sample_with_its_preferences(make_project):
    project = make_project(Kind.BINARY)
    # Four pairs of the real file end with an empty assistant turn: an empty answer is a real
    # answer (README: Importing), so the whole file imports, those four included.
    batch = import_path(project=project, path=HH_SAMPLE, as_judgments=True)

    assert (batch.lines_read, batch.items_created, batch.judgments_created) == (2312, 2312, 2312)
    assert Candidate.objects.filter(item__project=project).count() == 2 * 2312
    assert Candidate.objects.filter(item__project=project, text="").count() == 4
    first = Item.objects.filter(project=project).order_by("id").first()
    assert first.prompt[0] == {"role": "user", "content": "what are some pranks with a pen i can do?"}
    assert first.prompt[-1]["role"] == "user" and first.prompt[-1]["content"] == "okay some of these do not have anything to do with pens"
    assert texts(first)[0].startswith("No, sorry!  All of these involve a pen")
    assert {(j.source, j.rater_id, json.dumps(j.value)) for j in Judgment.objects.filter(project=project)} == {("import", None, '{"winner": 0}')}
    # Imported labels are not human judgments: raters still label every item.
    assert not Item.objects.filter(project=project, judgment_count__gt=0).exists()
    assert not Item.objects.filter(project=project, taken__gt=0).exists()
    # Idempotent: the same file again adds nothing.
    again = import_path(project=project, path=HH_SAMPLE, as_judgments=True)
    assert (again.items_created, again.items_skipped, again.judgments_created) == (0, 2312, 0)
    assert Judgment.objects.filter(project=project).count() == 2312


def test_it_reports_every_bad_line_with_its_number_and_imports_nothing(project):
    lines = [
        json.dumps({"id": "ok-1", "prompt": "fine", "responses": ["a", "b"]}),
        json.dumps({"id": "bad-2", "prompt": "", "responses": ["a", "b"]}),
        "{not json",
        json.dumps({"id": "bad-4", "prompt": "three", "responses": ["a", "b", "c"]}),
        "",
        json.dumps({"id": "bad-6", "prompt": "q", "responses": ["a", "b"], "gold": {"winner": 7}}),
        json.dumps({"id": "ok-1", "prompt": "again", "responses": ["a", "b"]}),
        json.dumps({"id": "bad-8", "prompt": "q", "respones": ["a", "b"]}),
        json.dumps({"id": "ok-9", "prompt": [{"role": "robot", "content": "x"}], "responses": ["a", "b"]}),
    ]
    with pytest.raises(ImportFailed) as failed:
        run(project, ("\n".join(lines) + "\n").encode())

    found = {(e["line"], e["field"]) for e in failed.value.errors}
    assert found == {(2, "prompt"), (3, "line"), (4, "responses"), (6, "gold.winner"), (7, "id"), (8, "respones"), (9, "prompt[0].role")}
    messages = {e["line"]: e["message"] for e in failed.value.errors}
    assert "needs 2 responses per item, got 3" in messages[4]
    assert messages[7] == "repeats the id of line 1"
    assert [e["line"] for e in failed.value.errors] == sorted(e["line"] for e in failed.value.errors)
    assert failed.value.error_count == 7
    assert not Item.objects.filter(project=project).exists()
    assert not Candidate.objects.filter(item__project=project).exists()
    batch = ImportBatch.objects.get(project=project)
    assert batch.status == "failed" and len(batch.errors) == 7 and batch.items_created == 0


def test_it_rolls_back_items_already_inserted_when_a_late_line_is_bad(project, settings):
    settings.ARBITER_IMPORT_BATCH_SIZE = 2  # earlier chunks are inserted before the bad line is read
    good = [{"id": f"g-{i}", "prompt": "q", "responses": ["a", "b"]} for i in range(5)]
    with pytest.raises(ImportFailed) as failed:
        run(project, jsonl(*good, {"id": "bad", "prompt": "q", "responses": ["only one"]}))
    assert [e["line"] for e in failed.value.errors] == [6]
    assert Item.objects.filter(project=project).count() == 0


def test_it_caps_the_error_list_and_counts_the_rest(project, monkeypatch):
    monkeypatch.setattr("annotation.importers.service.MAX_ERRORS", 5)
    with pytest.raises(ImportFailed) as failed:
        run(project, b"nope\n" * 12)
    assert failed.value.error_count == 12
    assert len(failed.value.errors) == 6 and failed.value.errors[-1]["message"] == "... and 7 more errors"


def test_it_skips_ids_already_in_the_project(project):
    first = jsonl({"id": "a", "prompt": "q1", "responses": ["x", "y"]}, {"id": "b", "prompt": "q2", "responses": ["x", "y"]})
    assert run(project, first).items_created == 2
    second = run(project, jsonl({"id": "b", "prompt": "changed", "responses": ["x", "y"]}, {"id": "c", "prompt": "q3", "responses": ["x", "y"]}))
    assert (second.items_created, second.items_skipped) == (1, 1)
    assert Item.objects.get(project=project, external_id="b").prompt == "q2"  # the existing item is untouched
    assert Item.objects.filter(project=project).count() == 3


def test_it_skips_the_same_content_twice_without_ids(project):
    record = {"prompt": "same", "chosen": "a", "rejected": "b"}
    batch = run(project, jsonl(record, record))
    assert (batch.items_created, batch.items_skipped) == (1, 1)


def test_it_validates_candidate_counts_against_the_project_kind(make_project):
    ranking = make_project(Kind.RANKING, ranking_k=4, ranking_min_k=3)
    with pytest.raises(ImportFailed) as failed:
        run(ranking, jsonl({"prompt": "q", "chosen": "a", "rejected": "b"}))
    assert failed.value.errors[0]["field"] == "responses" and "needs 3 to 4 responses" in failed.value.errors[0]["message"]
    rating = make_project(Kind.RATING)
    assert run(rating, jsonl({"id": "one", "prompt": "q", "responses": ["a"]}, {"id": "three", "prompt": "q", "responses": ["a", "b", "c"]})).items_created == 2


def test_it_stores_trl_preferences_as_import_judgments_in_the_project_kind(make_project):
    binary = make_project(Kind.BINARY)
    batch = run(binary, jsonl({"prompt": "q", "chosen": "good", "rejected": "bad"}), as_judgments=True)
    judgment = Judgment.objects.get(project=binary)
    assert batch.judgments_created == 1
    assert (judgment.source, judgment.rater, judgment.kind, judgment.value) == ("import", None, "binary", {"winner": 0})
    assert texts(judgment.item) == ["good", "bad"]  # winner 0 is the chosen response

    likert = make_project(Kind.LIKERT, likert_points=7)
    run(likert, jsonl({"prompt": "q1", "chosen": "a", "rejected": "b"}, {"prompt": "q2", "chosen": "a", "rejected": "b", "margin": 3}), as_judgments=True)
    assert sorted(j.value["strength"] for j in Judgment.objects.filter(project=likert)) == [1, 3]
    with pytest.raises(ImportFailed) as failed:
        run(likert, jsonl({"prompt": "q3", "chosen": "a", "rejected": "b", "margin": 9}), as_judgments=True)
    assert failed.value.errors[0]["field"] == "margin"


def test_it_refuses_as_judgments_for_records_without_a_preference(project):
    with pytest.raises(ImportFailed) as failed:
        run(project, jsonl({"id": "x", "prompt": "q", "responses": ["a", "b"]}), as_judgments=True)
    assert failed.value.errors == [{"line": 1, "field": "as_judgments", "message": "only preference records (chosen/rejected) carry a label to import"}]


def test_it_reads_gzip_by_content_and_a_pipe_that_cannot_seek(project, tmp_path):
    data = jsonl({"id": "z-1", "prompt": "q", "responses": ["a", "b"]}, {"id": "z-2", "prompt": "q", "responses": ["a", "b"]})
    path = tmp_path / "items.jsonl.gz"
    path.write_bytes(gzip.compress(data))
    assert import_path(project=project, path=path).items_created == 2

    class Pipe(io.RawIOBase):
        def __init__(self, payload):
            self.inner = io.BytesIO(payload)

        def readable(self):
            return True

        def seekable(self):
            return False

        def readinto(self, buffer):
            chunk = self.inner.read(len(buffer))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    batch = import_stream(project=project, stream=io.BufferedReader(Pipe(gzip.compress(jsonl({"id": "z-3", "prompt": "q", "responses": ["a", "b"]})))))
    assert batch.items_created == 1


def test_it_names_the_line_of_a_csv_row_and_rejects_unknown_columns(project):
    csv_text = 'id,prompt,response_1,response_2\nr1,"multi\nline prompt",a,b\nr2,,a,b\nr3,q,a\n'
    with pytest.raises(ImportFailed) as failed:
        run(project, csv_text.encode(), filename="x.csv")
    assert [(e["line"], e["field"]) for e in failed.value.errors] == [(4, "prompt"), (5, "line")]

    with pytest.raises(ImportFailed) as failed:
        run(project, b"id,question,response_1\n1,q,a\n", filename="y.csv")
    assert failed.value.errors[0]["line"] == 1 and "question" in failed.value.errors[0]["message"]


def test_it_finds_ids_repeated_across_chunks_and_after_a_bad_line(project, settings):
    settings.ARBITER_IMPORT_BATCH_SIZE = 2
    data = jsonl(
        {"id": "a", "prompt": "q", "responses": ["x", "y"]},
        {"id": "b", "prompt": "q", "responses": ["x", "y"]},
        {"id": "c", "prompt": "", "responses": ["x", "y"]},
        {"id": "d", "prompt": "q", "responses": ["x", "y"]},
        {"id": "a", "prompt": "q", "responses": ["x", "y"]},
        {"id": "d", "prompt": "q", "responses": ["x", "y"]},
    )
    with pytest.raises(ImportFailed) as failed:
        run(project, data)
    assert [(e["line"], e["field"], e["message"]) for e in failed.value.errors] == [
        (3, "prompt", "must not be empty"),
        (5, "id", "repeats the id of line 1"),
        (6, "id", "repeats the id of line 4"),
    ]
    assert not Item.objects.filter(project=project).exists()


def test_it_reads_trl_columns_in_csv_and_transcript_prompts(project):
    csv_text = 'prompt,chosen,rejected\n"\n\nHuman: hi\n\nAssistant:", hello there, go away\n'
    batch = run(project, csv_text.encode(), filename="prefs.csv", as_judgments=True)
    item = Item.objects.get(project=project)
    assert (batch.format, batch.judgments_created) == ("csv", 1)
    assert item.prompt == [{"role": "user", "content": "hi"}]
    assert texts(item) == ["hello there", "go away"]


def test_it_reports_a_truncated_gzip_and_imports_nothing(project):
    data = gzip.compress(jsonl(*[{"id": f"t-{i}", "prompt": "q" * 50, "responses": ["a", "b"]} for i in range(200)]))
    with pytest.raises(ImportFailed) as failed:
        run(project, data[: len(data) // 2], filename="cut.jsonl.gz")
    assert any(e["field"] == "file" and "cannot read the file" in e["message"] for e in failed.value.errors)
    assert not Item.objects.filter(project=project).exists()
