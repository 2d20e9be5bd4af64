"""Dataset snapshots: build, files, manifest, split, consensus, atomic failure, downloads, roles."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from django.core.management import call_command

from annotation.quality import consensus
from annotation.exports import OptionsError, snapshot_create
from annotation.exports.build import snapshot_build, snapshot_dir
from annotation.kinds import Kind
from annotation.models import DatasetSnapshot, Judgment, Membership, Role


def judge(project, item, rater, value, *, source="human", order=None, **extra):
    return Judgment.objects.create(
        project=project, item=item, rater=rater, kind=project.kind, source=source, value=value,
        display_order=order if order is not None else list(range(item.candidates.count())), duration_ms=1200, **extra,
    )


def build(project, user=None, **options):
    snapshot = snapshot_create(project=project, options=options, created_by=user, enqueue=False)
    return snapshot_build(snapshot_id=snapshot.id)


def rows(snapshot, fmt, split):
    path = Path(snapshot.path) / fmt / f"{split}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def all_rows(snapshot, fmt):
    return rows(snapshot, fmt, "train") + rows(snapshot, fmt, "test")


@pytest.fixture
def raters(make_user, make_project):
    return [make_user(f"rater{i}") for i in range(3)]


def test_it_builds_every_format_of_a_binary_project_with_a_manifest_that_matches_the_files(make_project, add_items, member, owner):
    project = make_project(Kind.BINARY)
    items = add_items(project, 20)
    for i, item in enumerate(items):
        judge(project, item, member, {"winner": i % 2} if i < 16 else {"winner": "both_bad" if i < 18 else "tie"})
    snapshot = build(project, owner, test_share=0.3)

    assert snapshot.status == "ready", snapshot.error
    folder = Path(snapshot.path)
    assert folder == snapshot_dir(snapshot) and folder.name == "v1"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest == snapshot.manifest
    for fmt in ("preference", "unpaired", "sft", "judgments"):
        for split in ("train", "test"):
            for ext in ("jsonl", "parquet"):
                name = f"{fmt}/{split}.{ext}"
                assert manifest["files"][name]["sha256"] == hashlib.sha256((folder / name).read_bytes()).hexdigest()
            assert pq.read_table(folder / fmt / f"{split}.parquet").num_rows == manifest["counts"][fmt][split]
    assert "README.md" in manifest["files"]
    assert manifest["created_by"] == "owner" and manifest["code_version"]
    assert manifest["options"]["test_share"] == 0.3

    preference = all_rows(snapshot, "preference")
    assert len(preference) == 16
    assert set(preference[0]) == {"prompt", "chosen", "rejected"}  # binary: no margin
    by_prompt = {r["prompt"]: r for r in preference}
    assert by_prompt["Question 1?"]["chosen"] == "Answer 1 to p-00001"
    assert by_prompt["Question 1?"]["rejected"] == "Answer 0 to p-00001"
    unpaired = all_rows(snapshot, "unpaired")
    # 16 decided items give one good and one bad each, the two "both bad" items two bad each.
    assert len(unpaired) == 36 and sum(r["label"] for r in unpaired) == 16
    assert len(all_rows(snapshot, "sft")) == 16
    judgments = sorted(all_rows(snapshot, "judgments"), key=lambda j: j["item_id"])
    assert len(judgments) == 20
    assert {j["rater"] for j in judgments} != {str(member.id)} and judgments[0]["rater"].startswith("r-")
    assert json.loads(judgments[0]["value"]) == {"winner": 0}
    assert judgments[0]["candidates"][1]["text"] == "Answer 1 to p-00000"
    readme = (folder / "README.md").read_text()
    assert "load_dataset" in readme and "binary" in readme


def test_it_never_puts_one_prompt_in_both_train_and_test(make_project, add_items, raters):
    project = make_project(Kind.BINARY)
    items = add_items(project, 40)
    # A second project item set sharing prompts: same text must land on the same side.
    for item in items:
        for rater in raters:
            judge(project, item, rater, {"winner": 0})
    snapshot = build(project, test_share=0.5, aggregation="none")
    train = {r["prompt"] for r in rows(snapshot, "judgments", "train")}
    test = {r["prompt"] for r in rows(snapshot, "judgments", "test")}
    assert train and test and not train & test
    assert len(all_rows(snapshot, "preference")) == 120  # none: every judgment gives its own pair
    again = build(project, test_share=0.5, aggregation="none")
    assert again.version == 2
    assert {r["prompt"] for r in rows(again, "judgments", "test")} == test  # same seed, same split


def test_it_writes_chat_prompts_in_trl_conversational_form(make_project, add_items, member):
    project = make_project(Kind.BINARY)
    for item in add_items(project, 5, chat=True):
        judge(project, item, member, {"winner": 1})
    snapshot = build(project, test_share=0.0)
    row = rows(snapshot, "preference", "train")[0]
    assert row["prompt"] == [{"role": "user", "content": "Question 0?"}]
    assert row["chosen"] == [{"role": "assistant", "content": "Answer 1 to p-00000"}]
    assert rows(snapshot, "sft", "train")[0]["completion"][0]["role"] == "assistant"
    table = pq.read_table(Path(snapshot.path) / "preference" / "train.parquet")
    assert table.to_pylist()[0] == row
    assert "conversational" in (Path(snapshot.path) / "README.md").read_text()


def test_it_exports_likert_strength_as_margin(make_project, add_items, member):
    project = make_project(Kind.LIKERT, likert_points=7)
    items = add_items(project, 3)
    judge(project, items[0], member, {"winner": 0, "strength": 3})
    judge(project, items[1], member, {"winner": 1, "strength": 1})
    judge(project, items[2], member, {"winner": "tie", "strength": 0})
    snapshot = build(project, test_share=0.0)
    preference = rows(snapshot, "preference", "train")
    assert sorted(r["margin"] for r in preference) == [1.0, 3.0]
    assert len(preference) == 2


def test_it_turns_rankings_into_pairs_and_the_top_tier_into_sft(make_project, add_items, raters):
    project = make_project(Kind.RANKING, ranking_k=3)
    item = add_items(project, 1)[0]
    for rater in raters:
        judge(project, item, rater, {"ranking": [[2], [0], [1]]})
    snapshot = build(project, test_share=0.0)
    preference = rows(snapshot, "preference", "train")
    assert {(r["chosen"], r["rejected"], r["margin"]) for r in preference} == {
        ("Answer 2 to p-00000", "Answer 0 to p-00000", 1.0),
        ("Answer 2 to p-00000", "Answer 1 to p-00000", 2.0),
        ("Answer 0 to p-00000", "Answer 1 to p-00000", 1.0),
    }
    assert rows(snapshot, "sft", "train") == [{"prompt": "Question 0?", "completion": "Answer 2 to p-00000", "source": "agreed_best"}]
    unpaired = rows(snapshot, "unpaired", "train")
    assert {(r["completion"], r["label"]) for r in unpaired} == {("Answer 2 to p-00000", True), ("Answer 1 to p-00000", False)}


def test_it_labels_ratings_by_threshold_and_pairs_differing_scores(make_project, add_items, member):
    project = make_project(Kind.RATING, rating_threshold=4)
    item = add_items(project, 1, candidates=3)[0]
    judge(project, item, member, {"scores": [5, 2, 4]})
    snapshot = build(project, test_share=0.0)
    unpaired = rows(snapshot, "unpaired", "train")
    assert [r["label"] for r in unpaired] == [True, False, True]
    assert len(rows(snapshot, "preference", "train")) == 3
    assert rows(snapshot, "sft", "train")[0]["completion"] == "Answer 0 to p-00000"


def test_it_combines_judgments_by_majority_and_drops_low_agreement(make_project, add_items, raters):
    project = make_project(Kind.BINARY)
    split, unanimous = add_items(project, 2)
    for rater, winner in zip(raters, [0, 0, 1]):
        judge(project, split, rater, {"winner": winner})
    for rater in raters:
        judge(project, unanimous, rater, {"winner": 1})
    snapshot = build(project, test_share=0.0)
    assert len(rows(snapshot, "preference", "train")) == 2
    # SFT needs the raters to agree: only the unanimous item.
    assert rows(snapshot, "sft", "train") == [{"prompt": "Question 1?", "completion": "Answer 1 to p-00001", "source": "agreed_best"}]
    strict = build(project, test_share=0.0, min_agreement=0.9)
    assert len(rows(strict, "preference", "train")) == 1
    assert strict.manifest["judgments"]["items_below_min_agreement"] == 1
    assert strict.manifest["judgments"]["mean_agreement_with_consensus"] == pytest.approx((2 / 3 + 1) / 2, abs=1e-3)


def test_it_lets_a_reliable_rater_outvote_careless_ones_with_dawid_skene():
    # "careful" is always right; "a" and "b" are each wrong on 30% of items, both on 10%. There
    # majority sides with the two careless raters; Dawid-Skene has learnt whom to trust.
    rows = []
    truth = [((i // 10) % 2) ^ (i % 3 == 0) for i in range(60)]
    for i, t in enumerate(truth):
        rows.append((i, "careful", t))
        rows.append((i, "a", 1 - t if i % 10 in (0, 1, 2) else t))
        rows.append((i, "b", 1 - t if i % 10 in (2, 3, 4) else t))
    winners = consensus.dawid_skene_winners(rows)
    majority = consensus.consensus_by_item(Kind.BINARY, rows=[(i, r, {"winner": w}) for i, r, w in rows])
    assert sum(majority[i].value["winner"] == t for i, t in enumerate(truth)) == 54
    assert all(winners[i][0] == t for i, t in enumerate(truth))
    weighted = consensus.consensus_by_item(Kind.BINARY, rows=[(i, r, {"winner": w}) for i, r, w in rows], method="dawid_skene")
    assert weighted[2].value == {"winner": truth[2]} and weighted[2].agreement == pytest.approx(1 / 3)


def test_it_builds_with_dawid_skene_aggregation(make_project, add_items, raters):
    project = make_project(Kind.BINARY)
    for item in add_items(project, 6):
        for rater, winner in zip(raters, [0, 0, 1]):
            judge(project, item, rater, {"winner": winner})
    snapshot = build(project, test_share=0.0, aggregation="dawid_skene")
    assert snapshot.status == "ready", snapshot.error
    assert {r["chosen"][:8] for r in rows(snapshot, "preference", "train")} == {"Answer 0"}


def test_it_leaves_out_ai_paused_raters_and_gold_unless_asked(make_project, add_items, member, raters):
    project = make_project(Kind.BINARY)
    normal = add_items(project, 2)
    gold = add_items(project, 1, gold={"winner": 0}, prefix="g")[0]
    judge(project, normal[0], member, {"winner": 0})
    judge(project, normal[0], None, {"winner": 1}, source="ai", ai_model="judge-7b")
    judge(project, normal[1], raters[0], {"winner": 1}, source="import")
    judge(project, gold, member, {"winner": 0})
    Membership.objects.create(project=project, user=raters[1], role=Role.RATER, paused=True)
    judge(project, normal[1], raters[1], {"winner": 0})

    default = build(project, test_share=0.0)
    sources = [r["source"] for r in all_rows(default, "judgments")]
    assert sorted(sources) == ["human", "import"]
    everything = build(project, test_share=0.0, sources=["human", "import", "ai"], keep_gold=True, exclude_paused=False)
    judged = all_rows(everything, "judgments")
    assert len(judged) == 5 and "ai:judge-7b" in {r["rater"] for r in judged}


def test_it_drops_ties_and_both_bad_when_asked(make_project, add_items, member):
    project = make_project(Kind.BINARY)
    items = add_items(project, 3)
    for item, winner in zip(items, [0, "tie", "both_bad"]):
        judge(project, item, member, {"winner": winner})
    snapshot = build(project, test_share=0.0, keep_ties=False, keep_both_bad=False)
    assert len(all_rows(snapshot, "judgments")) == 1 and len(all_rows(snapshot, "unpaired")) == 2


def test_it_rejects_bad_options_naming_the_field(project):
    with pytest.raises(OptionsError) as err:
        snapshot_create(project=project, options={"test_share": 1.5, "aggregation": "vibes", "colour": 1}, enqueue=False)
    assert set(err.value.errors) == {"test_share", "aggregation", "colour"}
    assert not DatasetSnapshot.objects.exists()


def test_it_leaves_nothing_visible_when_a_build_fails(make_project, add_items, member, monkeypatch):
    project = make_project(Kind.BINARY)
    for item in add_items(project, 3):
        judge(project, item, member, {"winner": 0})
    from annotation.exports import build as build_module

    def explode(**kwargs):
        raise RuntimeError("disk on fire")

    # The failure happens after every data file is written, just before the card.
    monkeypatch.setattr(build_module, "render_card", explode)
    snapshot = build(project)
    assert snapshot.status == "failed" and "disk on fire" in snapshot.error and snapshot.path == ""
    assert list(snapshot_dir(snapshot).parent.iterdir()) == []


def test_it_numbers_versions_and_does_nothing_when_the_task_arrives_twice(project, add_items, member, django_capture_on_commit_callbacks):
    judge(project, add_items(project, 1)[0], member, {"winner": 0})
    with django_capture_on_commit_callbacks(execute=True):
        first = snapshot_create(project=project, options={})
    first.refresh_from_db()
    assert first.status == "ready" and first.version == 1
    again = snapshot_build(snapshot_id=first.id)
    assert again.status == "ready" and again.manifest == first.manifest
    second = snapshot_create(project=project, options={}, enqueue=False)
    assert second.version == 2


def test_it_exports_several_projects_into_one_snapshot_from_the_command(make_project, add_items, member, tmp_path):
    one, two = make_project(Kind.BINARY), make_project(Kind.BINARY)
    for project in (one, two):
        for item in add_items(project, 2):
            judge(project, item, member, {"winner": 0})
    out = tmp_path / "export"
    call_command("export_dataset", "--project", one.slug, "--project", two.slug, "--out", str(out), "--test-share", "0")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["projects"] == [one.slug, two.slug]
    assert manifest["counts"]["preference"]["train"] == 4
    assert (out / "preference" / "train.parquet").is_file()


def test_it_puts_agreement_figures_and_the_instructions_on_the_card(make_project, add_items, raters):
    project = make_project(Kind.BINARY, instructions="Prefer the **honest** answer.", overlap=3)
    for i, item in enumerate(add_items(project, 6)):
        for rater, winner in zip(raters, [0, 0, i % 2]):
            judge(project, item, rater, {"winner": winner})
    snapshot = build(project, test_share=0.0)
    card = (Path(snapshot.path) / "README.md").read_text()
    assert "> Prefer the **honest** answer." in card
    assert "judgments: 18 (binary: 18)" in card
    assert "mean share of judgments agreeing with the item consensus: 0.8333" in card
    assert "alpha = " in card  # from the quality module, when it is there
    assert 'load_dataset("json", data_files=files)' in card


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_it_gives_simultaneous_builds_distinct_versions(transactional_db, make_project):
    import threading

    from django.db import connection, connections

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: threads with their own connections")
    project = make_project(Kind.BINARY)
    barrier = threading.Barrier(6)
    versions, errors = [], []

    def create():
        try:
            barrier.wait()
            versions.append(snapshot_create(project=project, options={}, enqueue=False).version)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=create) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and sorted(versions) == [1, 2, 3, 4, 5, 6]


def test_it_makes_text_prompts_conversational_when_chat_items_are_mixed_in(make_project, add_items, member):
    project = make_project(Kind.BINARY)
    for item in add_items(project, 1) + add_items(project, 1, chat=True, prefix="c"):
        judge(project, item, member, {"winner": 0})
    snapshot = build(project, test_share=0.0)
    prompts = [r["prompt"] for r in rows(snapshot, "preference", "train")]
    assert [{"role": "user", "content": "Question 0?"}] in prompts and all(isinstance(p, list) for p in prompts)


def test_it_refuses_to_export_into_a_folder_that_holds_files(project, tmp_path):
    from django.core.management.base import CommandError

    (tmp_path / "taken.txt").write_text("mine")
    with pytest.raises(CommandError, match="not an empty folder"):
        call_command("export_dataset", "--project", project.slug, "--out", str(tmp_path))
    with pytest.raises(CommandError, match="--project nope: no such project"):
        call_command("export_dataset", "--project", "nope", "--out", str(tmp_path / "new"))
    with pytest.raises(CommandError, match="--test-share"):
        call_command("export_dataset", "--project", project.slug, "--out", str(tmp_path / "new"), "--test-share", "2")
    assert not DatasetSnapshot.objects.exists()
