"""Rankings of any size in one project (2..K_max responses per item), a failed `--create` import
that leaves nothing behind, and a split that keeps a group (metadata.group, or a conversation)
on one side. The real-data-shaped case: one project, K from 2 to 9, several turns of one
conversation, imported and exported with the right number of pairs."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from annotation import kinds
from annotation.assignment import lease_next
from annotation.exports import snapshot_create
from annotation.exports.build import snapshot_build
from annotation.exports.split import group_key, split_of
from annotation.judgments import judgment_submit
from annotation.kinds import Kind
from annotation.quality.leaderboard import project_games, project_leaderboard
from annotation.models import Item, Judgment, Membership, Project, Role
from annotation.projects import project_create, project_update
from annotation.quality.figures import project_quality_compute


def write(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def conversation_records(n_conversations: int = 12, turns: int = 3, seed: int = 7) -> list[dict]:
    """Like the public ranking data: conversation trees whose every turn is an item of its own
    (the prompt grows by one exchange per turn), each with 2..9 ranked replies by named models."""
    rng = random.Random(seed)
    records, k_cycle = [], list(range(2, 10))
    for c in range(n_conversations):
        messages = [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": f"Conversation {c}: how do I start?"}]
        for t in range(turns):
            k = k_cycle[(c * turns + t) % len(k_cycle)]
            records.append(
                {
                    "id": f"c{c}-t{t}",
                    "prompt": list(messages),
                    "responses": [{"text": f"reply {r} to c{c} t{t}", "model": f"model-{r}"} for r in range(k)],
                }
            )
            messages += [{"role": "assistant", "content": f"answer {t}"}, {"role": "user", "content": f"follow-up {t} of {c} ({rng.random():.3f})"}]
    return records


def rank_everything(project: Project, rater) -> int:
    """The rater ranks every item they are given (best = lowest position); returns how many."""
    n = 0
    while (lease := lease_next(project=project, rater=rater, rng=random.Random(n))) is not None:
        k = len(lease.display_order)
        judgment_submit(assignment=lease, rater=rater, value={"ranking": [[p] for p in range(k)]})
        n += 1
    return n


def test_it_imports_mixed_k_from_2_to_9_and_exports_every_pair_with_no_conversation_on_both_sides(tmp_path, owner, member):
    records = conversation_records()
    path = write(tmp_path / "rankings.jsonl", records)
    call_command("import_items", str(path), project="ranked", create=True, kind="ranking", owner=owner.username, max_k=9)
    project = Project.objects.get(slug="ranked")
    assert (project.ranking_min_k, project.ranking_k) == (2, 9)
    assert Item.objects.filter(project=project).count() == len(records)
    Membership.objects.create(project=project, user=member, role=Role.RATER)

    assert rank_everything(project, member) == len(records)
    sizes = [len(r["responses"]) for r in records]
    assert sorted(set(sizes)) == list(range(2, 10))

    snapshot = snapshot_build(snapshot_id=snapshot_create(project=project, options={"test_share": 0.3, "aggregation": "none"}, created_by=owner, enqueue=False).id)
    assert snapshot.status == "ready", snapshot.error
    counts = snapshot.manifest["counts"]
    assert counts["preference"]["train"] + counts["preference"]["test"] == sum(k * (k - 1) // 2 for k in sizes)
    assert counts["judgments"]["train"] + counts["judgments"]["test"] == len(records)
    assert counts["judgments"]["test"] > 0 and counts["judgments"]["train"] > 0

    sides: dict[str, set[str]] = {}
    for split in ("train", "test"):
        for line in (Path(snapshot.path) / "judgments" / f"{split}.jsonl").read_text().splitlines():
            row = json.loads(line)
            conversation = row["item_id"].split("-")[0]
            sides.setdefault(conversation, set()).add(split)
    assert len(sides) == 12
    assert all(len(s) == 1 for s in sides.values()), {c: s for c, s in sides.items() if len(s) > 1}
    card = (Path(snapshot.path) / "README.md").read_text()
    assert "The split is by group" in card and "metadata.group" in card


def test_it_shows_as_many_number_keys_as_the_item_has_responses(client_for, make_project, add_items, member):
    project = make_project(Kind.RANKING, ranking_k=9)
    add_items(project, 1, candidates=7)
    page = client_for(member).get(f"/projects/{project.slug}/label/").content.decode()
    assert page.count('class="candidate card"') == 7
    assert "<kbd>1</kbd>…<kbd>7</kbd>" in page
    lease = lease_next(project=project, rater=member)
    with pytest.raises(kinds.InvalidValue):
        judgment_submit(assignment=lease, rater=member, value={"ranking": [[p] for p in range(9)]})
    judgment, created = judgment_submit(assignment=lease, rater=member, value={"ranking": [[p] for p in range(7)]})
    assert created and len(kinds.comparisons(Kind.RANKING, judgment.value)) == 21


def test_it_checks_gold_and_agreement_per_item_k(make_project, add_items, make_user):
    project = make_project(Kind.RANKING, ranking_k=5, overlap=2)
    small, large = add_items(project, 1, candidates=2)[0], add_items(project, 1, candidates=5, prefix="q")[0]
    raters = [make_user(f"r{i}") for i in range(2)]
    for rater in raters:
        Membership.objects.create(project=project, user=rater, role=Role.RATER)
    for item in (small, large):
        k = item.candidates.count()
        for rater in raters:
            Judgment.objects.create(project=project, item=item, rater=rater, kind=project.kind, value={"ranking": [[p] for p in range(k)]}, display_order=list(range(k)))
    figures = project_quality_compute(project=project)["summary"]
    assert figures["alpha"] == 1.0  # the two raters agree on every item of either size
    # The chance of the first card being picked: 1/2 for the 2-response item, 1/5 for the other.
    assert figures["first_card_expected"] == pytest.approx((0.5 + 0.2) / 2, abs=1e-3)
    assert kinds.gold_matches(Kind.RANKING, {"ranking": [[1], [0]]}, {"ranking": [[1], [0]]})
    # Leaderboard games: every pair of every judgment, K(K-1)/2 of each item's own K.
    models, winner, loser, tie = project_games(project=project)
    assert len(winner) == 2 * (1 + 10)
    board = {row["model"]: row for row in project_leaderboard(project=project, rounds=10)}
    assert board["model-0"]["rank"] == 1 and board["model-4"]["games"] == 2 * 4


def test_it_refuses_items_outside_the_range_naming_line_and_field(make_project, tmp_path, capsys):
    project = make_project(Kind.RANKING, ranking_k=4, ranking_min_k=3)
    path = write(tmp_path / "r.jsonl", [{"id": "a", "prompt": "q", "responses": ["x", "y", "z"]}, {"id": "b", "prompt": "q", "responses": ["x", "y"]}])
    with pytest.raises(CommandError):
        call_command("import_items", str(path), project=project.slug)
    assert f"{path}:2: responses: this ranking project needs 3 to 4 responses per item, got 2" in capsys.readouterr().err
    assert not Item.objects.filter(project=project).exists()


def test_a_failed_create_import_leaves_no_project_behind(tmp_path, owner, capsys):
    path = write(tmp_path / "bad.jsonl", [{"id": "a", "prompt": "q", "responses": ["x"] * 12}])
    with pytest.raises(CommandError):
        call_command("import_items", str(path), project="never", create=True, kind="ranking", owner=owner.username)
    assert not Project.objects.filter(slug="never").exists()
    assert "removed project never" in capsys.readouterr().err
    with pytest.raises(CommandError, match="ranking_min_k"):
        call_command("import_items", str(path), project="never", create=True, kind="ranking", min_k=5, max_k=3)
    assert not Project.objects.filter(slug="never").exists()


def test_it_keeps_the_range_consistent_and_never_excludes_items_already_there(owner, add_items):
    with pytest.raises(ValidationError) as bad:
        project_create(name="Bad range", created_by=owner, kind=Kind.RANKING, ranking_min_k=5, ranking_k=3)
    assert "ranking_min_k" in bad.value.message_dict
    project = project_create(name="Ranked", created_by=owner, kind=Kind.RANKING, ranking_min_k=2, ranking_k=6)
    add_items(project, 1, candidates=3)
    add_items(project, 1, candidates=5, prefix="q")
    project_update(project=project, fields={"ranking_k": 9})  # widening is fine
    with pytest.raises(ValidationError) as narrowed:
        project_update(project=project, fields={"ranking_k": 4, "ranking_min_k": 4})
    assert set(narrowed.value.message_dict) == {"ranking_k", "ranking_min_k"}


def test_the_group_key_is_metadata_group_then_the_conversation_opening():
    system = {"role": "system", "content": "shared"}
    turn1 = [system, {"role": "user", "content": "Hello there"}]
    turn2 = [*turn1, {"role": "assistant", "content": "hi"}, {"role": "user", "content": "more"}]
    other = [system, {"role": "user", "content": "Something else"}]
    assert group_key(turn1) == group_key(turn2) == group_key("Hello there")
    assert group_key(other) != group_key(turn1)  # a shared system prompt does not join conversations
    assert group_key("a", {"group": "g1"}) == group_key("b", {"group": "g1"}) != group_key("a")
    for seed in range(20):
        assert split_of(turn1, seed=seed, test_share=0.5) == split_of(turn2, seed=seed, test_share=0.5)
        assert split_of("x", seed=seed, test_share=0.5, metadata={"group": 7}) == split_of("y", seed=seed, test_share=0.5, metadata={"group": 7})


def test_items_with_one_group_land_on_one_side_of_a_snapshot(make_project, add_items, member, owner):
    project = make_project(Kind.BINARY)
    items = add_items(project, 40)
    for i, item in enumerate(items):
        item.metadata = {"group": f"g{i % 5}"}
        item.save(update_fields=["metadata"])
        Judgment.objects.create(project=project, item=item, rater=member, kind=project.kind, value={"winner": 0}, display_order=[0, 1])
    snapshot = snapshot_build(snapshot_id=snapshot_create(project=project, options={"test_share": 0.4, "seed": 3}, created_by=owner, enqueue=False).id)
    by_group: dict[str, set[str]] = {}
    for split in ("train", "test"):
        for line in (Path(snapshot.path) / "judgments" / f"{split}.jsonl").read_text().splitlines():
            number = int(json.loads(line)["item_id"].split("-")[1])
            by_group.setdefault(f"g{number % 5}", set()).add(split)
    assert len(by_group) == 5 and all(len(s) == 1 for s in by_group.values())
