"""A ranking project made by `import_items --create` takes its K range (fewest and most responses
per item) from the file; a file refused for its K is told the option or setting that fixes it.
Also the K settings' labels as a manager reads them."""
from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from annotation.importers import import_records
from annotation.kinds import Kind
from annotation.models import Item, Project


def write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def mixed_k(sizes):
    """OpenAssistant-style: one prompt, as many replies as each size says."""
    return [{"id": f"t-{i}", "prompt": f"Thread {i}?", "responses": [f"reply {j}" for j in range(k)]} for i, k in enumerate(sizes)]


def test_a_created_ranking_project_takes_its_k_range_from_the_file(owner, tmp_path, capsys):
    path = write(tmp_path / "oasst.jsonl", mixed_k([3, 9, 6, 4]))
    call_command("import_items", str(path), project="oasst", create=True, kind="ranking", owner=owner.username)
    project = Project.objects.get(slug="oasst")
    assert (project.ranking_min_k, project.ranking_k) == (3, 9)
    assert sorted(i.candidates.count() for i in Item.objects.filter(project=project)) == [3, 4, 6, 9]
    assert "3 to 9 responses per item" in capsys.readouterr().out


def test_an_explicit_k_range_wins_and_its_refusal_names_the_option(db, tmp_path, capsys):
    path = write(tmp_path / "oasst.jsonl", mixed_k([2, 6, 9]))
    with pytest.raises(CommandError):
        call_command("import_items", str(path), project="narrow", create=True, kind="ranking", max_k=4)
    err = capsys.readouterr().err
    assert f"{path}:2: responses: this ranking project needs 2 to 4 responses per item, got 6: raise the project's most responses per item (max K, ranking_k) to 6" in err
    assert f"{path}: the file has 2 to 9 responses per item: pass --min-k 2 --max-k 9" in err
    assert not Project.objects.filter(slug="narrow").exists()
    # The option it names works.
    call_command("import_items", str(path), project="narrow", create=True, kind="ranking", min_k=2, max_k=9)
    assert Item.objects.filter(project__slug="narrow").count() == 3


def test_an_existing_projects_refusal_names_the_setting(make_project, tmp_path, capsys):
    project = make_project(Kind.RANKING, ranking_min_k=3, ranking_k=4)
    path = write(tmp_path / "r.jsonl", mixed_k([3, 7, 2]))
    with pytest.raises(CommandError):
        call_command("import_items", str(path), project=project.slug)
    err = capsys.readouterr().err
    assert "lower the project's fewest responses per item (min K, ranking_min_k) to 2" in err
    assert f"{path}: the file has 2 to 7 responses per item: set the project's fewest/most responses per item to 2/7" in err
    # The API and the import page get the same message, naming the setting.
    with pytest.raises(Exception) as refused:
        import_records(project=project, records=mixed_k([7]))
    assert "raise the project's most responses per item (max K, ranking_k) to 7" in refused.value.errors[0]["message"]


def test_a_file_beyond_the_largest_k_says_so(db, tmp_path, capsys):
    path = write(tmp_path / "wide.jsonl", mixed_k([3, 12]))
    with pytest.raises(CommandError):
        call_command("import_items", str(path), project="wide", create=True, kind="ranking")
    assert "a ranking project takes at most 10 (--skip-invalid leaves those items out)" in capsys.readouterr().err
    call_command("import_items", str(path), project="wide", create=True, kind="ranking", skip_invalid=True)
    project = Project.objects.get(slug="wide")
    assert (project.ranking_min_k, project.ranking_k, project.items.count()) == (3, 10, 1)


def test_the_k_settings_read_as_responses_per_item(make_project, client_for, owner):
    from annotation.admin import ImportBatchAdmin  # noqa: F401 - registered
    from annotation.models import ImportBatch

    project = make_project(Kind.RANKING)
    page = client_for(owner).get(f"/projects/{project.slug}/settings/").content.decode()
    assert "Fewest responses per item" in page and "Most responses per item" in page
    assert "Ranking min k" not in page and "Ranking k" not in page
    assert str(ImportBatch._meta.verbose_name_plural) == "import batches"
