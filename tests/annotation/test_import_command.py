"""python manage.py import_items: counts, every error as PATH:LINE: field: message, --create."""
from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from annotation.models import Item, Membership, Project


def write(path, *records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_it_imports_a_file_and_prints_the_counts(project, tmp_path, capsys):
    path = write(tmp_path / "items.jsonl", {"id": "a", "prompt": "q", "responses": ["x", "y"]}, {"id": "b", "prompt": "q", "responses": ["x", "y"]})
    call_command("import_items", str(path), project=project.slug)
    assert "2 items created, 0 skipped" in capsys.readouterr().out

    call_command("import_items", str(path), project=project.slug)
    assert "0 items created, 2 skipped" in capsys.readouterr().out
    assert Item.objects.filter(project=project).count() == 2


def test_it_prints_every_bad_line_and_exits_non_zero(project, tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        json.dumps({"id": "a", "prompt": "q", "responses": ["x", "y"]}) + "\n"
        + "{oops\n"
        + json.dumps({"id": "c", "prompt": "q", "responses": ["only"]}) + "\n"
    )
    with pytest.raises(CommandError):
        call_command("import_items", str(path), project=project.slug)
    err = capsys.readouterr().err
    assert f"{path}:2: line: is not valid JSON" in err
    assert f"{path}:3: responses: this binary project needs 2 responses per item, got 1" in err
    assert "2 bad line(s); nothing imported" in err
    assert not Item.objects.filter(project=project).exists()


def test_it_creates_the_project_with_create_and_kind(owner, tmp_path, capsys):
    path = write(tmp_path / "prefs.jsonl", {"prompt": "q", "chosen": "good", "rejected": "bad"})
    call_command("import_items", str(path), project="fresh", create=True, kind="likert", owner="owner", as_judgments=True)
    project = Project.objects.get(slug="fresh")
    assert project.kind == "likert" and project.created_by == owner
    assert Membership.objects.get(project=project, user=owner).role == "manager"
    assert "1 judgments imported" in capsys.readouterr().out
    assert project.judgments.get().value == {"winner": 0, "strength": 1}


def test_it_refuses_a_missing_project_without_create(db, tmp_path):
    path = write(tmp_path / "x.jsonl", {"id": "a", "prompt": "q", "responses": ["x", "y"]})
    with pytest.raises(CommandError, match="--create --kind"):
        call_command("import_items", str(path), project="nope")
    with pytest.raises(CommandError, match="needs --kind"):
        call_command("import_items", str(path), project="nope", create=True)
    assert not Project.objects.exists()
