"""HelpSteer-style files (prompt, response, numeric attribute columns): rows grouped into one
item per prompt, imported judgments holding the attributes as answers, --create declaring the
questions, bad rows named file:line:field, the API and browser upload, and the round trip to
the attributes/ export."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from annotation import questions
from annotation.exports import snapshot_create
from annotation.exports.build import snapshot_build
from annotation.importers import ImportFailed, import_path
from annotation.kinds import Kind
from annotation.models import ImportBatch, Item, Judgment, Project

ATTRS = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
ROWS = [
    {"prompt": "What is 2+2?", "response": "4.", "helpfulness": 4, "correctness": 4, "coherence": 4, "complexity": 0, "verbosity": 1},
    {"prompt": "What is 2+2?", "response": "Five.", "helpfulness": 0, "correctness": 0, "coherence": 3, "complexity": 0, "verbosity": 1},
    {"prompt": "Name a fruit.", "response": "Mango.", "helpfulness": 3, "correctness": 4, "coherence": 4, "complexity": 1, "verbosity": 0},
    {"prompt": "Name a fruit.", "response": "A rock.", "helpfulness": 1, "correctness": 0, "coherence": 2, "complexity": 1, "verbosity": 2},
    {"prompt": "Name a fruit.", "response": "Apple, pear.", "helpfulness": 3, "correctness": 4, "coherence": 4, "complexity": 1, "verbosity": 2},
    {"prompt": "Say hi.", "response": "Hi!", "helpfulness": 2, "correctness": 3, "coherence": 4, "complexity": 0, "verbosity": 0},
]


def jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def csv_text(rows) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["prompt", "response", *ATTRS], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


@pytest.fixture
def rated(make_project):
    declared = [{"key": k, "type": "scale", "per": "response", "min": 0, "max": 4, "required": True} for k in ATTRS]
    return make_project(Kind.RATING, questions=questions.validate_questions(declared), rating_min=0, rating_max=4, rating_threshold=3)


def test_it_creates_a_rating_project_asking_the_files_attributes(db, owner, tmp_path, capsys):
    path = jsonl(tmp_path / "helpsteer.jsonl", ROWS)
    call_command("import_items", str(path), project="steer", create=True, as_judgments=True, owner="owner")
    out = capsys.readouterr().out
    assert "the rating is helpfulness (0-4)" in out and "3 items created" in out and "3 judgments imported" in out
    project = Project.objects.get(slug="steer")
    assert project.kind == Kind.RATING and (project.rating_min, project.rating_max, project.rating_threshold) == (0, 4, 3)
    assert [(q["key"], q["type"], q["per"], q["min"], q["max"], q["required"]) for q in project.questions] == [
        (k, "scale", "response", 0, 4, True) for k in ATTRS
    ]
    # One item per prompt, its responses the candidates in file order.
    fruit = Item.objects.get(project=project, prompt="Name a fruit.")
    assert [c.text for c in fruit.candidates.order_by("position")] == ["Mango.", "A rock.", "Apple, pear."]
    judgment = Judgment.objects.get(item=fruit)
    assert judgment.source == Judgment.Source.IMPORT and judgment.rater_id is None
    assert judgment.answers == {"helpfulness": [3, 1, 3], "correctness": [4, 0, 4], "coherence": [4, 2, 4], "complexity": [1, 1, 1], "verbosity": [0, 2, 2]}
    assert judgment.value == {"scores": [3, 1, 3]}  # the primary rating is the helpfulness column

    call_command("import_items", str(path), project="steer", as_judgments=True)
    assert "0 items created, 3 skipped" in capsys.readouterr().out  # idempotent, like every import


def test_it_names_a_bad_line_file_line_field_and_skips_its_prompt(rated, tmp_path, capsys):
    rows = [dict(r) for r in ROWS]
    rows[3]["correctness"] = "lots"  # line 5 of the CSV (after the header)
    path = tmp_path / "steer.csv"
    path.write_text(csv_text(rows))
    with pytest.raises(CommandError):
        call_command("import_items", str(path), project=rated.slug, as_judgments=True)
    err = capsys.readouterr().err
    assert f"{path}:5: correctness: must be an integer from 0 to 4 (the prompt's other rows, line 4, 6, are left out with it)" in err
    assert not Item.objects.filter(project=rated).exists()

    call_command("import_items", str(path), project=rated.slug, as_judgments=True, skip_invalid=True)
    captured = capsys.readouterr()
    assert f"{path}:5: correctness: must be an integer from 0 to 4" in captured.err and "(skipped)" in captured.err
    assert "2 items created" in captured.out and "2 judgments imported" in captured.out
    assert not Item.objects.filter(project=rated, prompt="Name a fruit.").exists()  # never part of a prompt's responses


def test_it_refuses_a_prompt_met_again_and_attributes_the_project_does_not_ask(rated, tmp_path):
    with pytest.raises(ImportFailed) as caught:
        import_path(project=rated, path=jsonl(tmp_path / "a.jsonl", [ROWS[0], ROWS[2], ROWS[1]]), as_judgments=True)
    assert caught.value.errors == [{"line": 3, "field": "prompt", "message": "repeats the prompt of line 1 after other prompts; keep a prompt's rows together"}]
    with pytest.raises(ImportFailed) as caught:
        import_path(project=rated, path=jsonl(tmp_path / "b.jsonl", [{**ROWS[5], "humour": 2}]), as_judgments=True)
    assert caught.value.errors[0]["field"] == "humour" and "asks no such question" in caught.value.errors[0]["message"]
    with pytest.raises(ImportFailed) as caught:
        import_path(project=rated, path=jsonl(tmp_path / "c.jsonl", [{k: v for k, v in ROWS[5].items() if k != "coherence"}]), as_judgments=True)
    assert caught.value.errors[0]["field"] == "coherence" and "required" in caught.value.errors[0]["message"]


def test_it_imports_the_items_alone_into_other_kinds_and_refuses_their_judgments(make_project, tmp_path):
    binary = make_project(Kind.BINARY)
    path = jsonl(tmp_path / "pairs.jsonl", ROWS[:2])
    with pytest.raises(ImportFailed) as caught:
        import_path(project=binary, path=path, as_judgments=True)
    assert caught.value.errors[0]["field"] == "as_judgments" and "rating judgments" in caught.value.errors[0]["message"]
    batch = import_path(project=binary, path=path)
    assert batch.items_created == 1 and not Judgment.objects.filter(project=binary).exists()


def test_it_imports_through_the_api_and_the_browser_upload(rated, api_for, client_for, owner, member, outsider, django_capture_on_commit_callbacks):
    url = f"/api/projects/{rated.slug}/items/import/"
    body = {"items": ROWS[:2], "as_judgments": True}
    assert api_for(member).post(url, body, format="json").status_code == 403
    assert api_for(outsider).post(url, body, format="json").status_code == 404
    response = api_for(owner).post(url, body, format="json")
    assert response.status_code == 201 and response.json()["judgments_created"] == 1

    bad = [dict(r) for r in ROWS[2:]]
    bad[1]["helpfulness"] = 9
    response = api_for(owner).post(url, {"items": bad, "as_judgments": True}, format="json")
    assert response.status_code == 400 and "helpfulness" in json.dumps(response.json())

    upload = SimpleUploadedFile("steer.csv", csv_text(ROWS[2:]).encode(), content_type="text/csv")
    with django_capture_on_commit_callbacks(execute=True):
        page = client_for(owner).post(f"/projects/{rated.slug}/import/", {"file": upload, "as_judgments": "on"})
    assert page.status_code == 302
    batch = ImportBatch.objects.filter(project=rated).latest("id")
    assert (batch.status, batch.items_created, batch.judgments_created, batch.format) == ("succeeded", 2, 2, "csv")
    assert Judgment.objects.get(item__prompt="Say hi.").answers["coherence"] == [4]


def test_it_round_trips_into_the_attributes_export(rated, tmp_path):
    import_path(project=rated, path=jsonl(tmp_path / "steer.jsonl", ROWS), as_judgments=True)
    snapshot = snapshot_build(snapshot_id=snapshot_create(project=rated, options={"test_share": 0.0}, created_by=None, enqueue=False).id)
    rows = [json.loads(line) for line in (Path(snapshot.path) / "attributes" / "train.jsonl").read_text().splitlines()]
    got = sorted(([r["prompt"], r["response"], *[r[k] for k in ATTRS], *[r[f"{k}_count"] for k in ATTRS]] for r in rows))
    assert got == sorted([r["prompt"], r["response"], *[float(r[k]) for k in ATTRS], *[1] * 5] for r in ROWS)
