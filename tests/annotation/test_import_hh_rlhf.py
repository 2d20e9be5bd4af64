"""`import_items --project hh --create --kind binary --as-judgments harmless-base-test.jsonl.gz`:
the most used preference dataset imports as it is, its empty answers included. A small synthetic
file in the same shape runs everywhere; the real sample (../shared/data/hh-rlhf) where it exists."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from django.core.management import call_command

from annotation.models import Candidate, Item, Judgment, Project

HH_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "hh-rlhf"
HH_SAMPLE = HH_DIR / "harmless-base-test.jsonl.gz"


def hh_pair(question: str, chosen: str, rejected: str) -> dict:
    # The HH-RLHF shape: whole transcripts, the prompt implicit in their shared beginning; an
    # empty answer is a transcript that ends at the last "Assistant:" marker.
    shared = f"\n\nHuman: {question}\n\nAssistant:"
    return {"chosen": shared + (f" {chosen}" if chosen else ""), "rejected": shared + (f" {rejected}" if rejected else "")}


def test_the_command_imports_an_hh_shaped_file_with_empty_answers(owner, tmp_path, capsys):
    pairs = [hh_pair(f"Question {i}?", f"Kind answer {i}." if i % 3 else "", f"Rude answer {i}." if i != 4 else "") for i in range(10)]
    path = tmp_path / "hh-small.jsonl.gz"
    path.write_bytes(gzip.compress("".join(json.dumps(p) + "\n" for p in pairs).encode()))

    call_command("import_items", str(path), project="hh", create=True, kind="binary", as_judgments=True, owner=owner.username)

    project = Project.objects.get(slug="hh")
    assert project.kind == "binary" and project.items.count() == 10
    assert "10 items created" in capsys.readouterr().out
    assert Judgment.objects.filter(project=project, source="import").count() == 10
    empty = Candidate.objects.filter(item__project=project, text="")
    assert sorted((c.item.prompt[0]["content"], c.position) for c in empty) == [
        ("Question 0?", 0), ("Question 3?", 0), ("Question 4?", 1), ("Question 6?", 0), ("Question 9?", 0)]


@pytest.mark.skipif(not HH_SAMPLE.exists(), reason=f"the real HH-RLHF sample is not here ({HH_SAMPLE}); the synthetic test above covers the shape")
def test_the_command_imports_the_real_hh_rlhf_sample_whole(db, capsys):
    call_command("import_items", str(HH_SAMPLE), project="hh", create=True, kind="binary", as_judgments=True)

    project = Project.objects.get(slug="hh")
    assert "2312 items created, 0 skipped (already in hh), 2312 judgments imported" in capsys.readouterr().out
    assert Item.objects.filter(project=project).count() == 2312
    assert Judgment.objects.filter(project=project, source="import").count() == 2312
    # The four empty answers are there, as empty answers.
    assert Candidate.objects.filter(item__project=project, text="").count() == 4
