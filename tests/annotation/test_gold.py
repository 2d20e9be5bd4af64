"""Gold items: mixed into the queue at the project's rate, accuracy tracked, raters paused."""
from __future__ import annotations

import random

import pytest

from annotation.assignment import RaterPaused, lease_next
from annotation.quality.gold import gold_accuracy, gold_recheck_all, gold_settings_set, paused_rater_ids, rater_pause, rater_unpause
from annotation.judgments import judgment_submit
from annotation.kinds import Kind
from annotation.models import Judgment, Membership

GOLD = {"winner": 0}


def _label(project, rater, n, *, gold_answer, normal_answer=None):
    """Lease and answer n items as a rater would; gold items get `gold_answer`."""
    leased_gold = 0
    for _ in range(n):
        assignment = lease_next(project=project, rater=rater)
        assert assignment is not None
        leased_gold += assignment.is_gold
        value = gold_answer if assignment.is_gold else (normal_answer or {"winner": 1})
        judgment_submit(assignment=assignment, rater=rater, value=value, duration_ms=5000)
    return leased_gold


def _membership(project, user):
    return Membership.objects.get(project=project, user=user)


def test_it_mixes_gold_items_into_the_queue_at_the_projects_rate(make_project, add_items, member):
    project = make_project(Kind.BINARY, gold_rate=0.25)
    add_items(project, 200)
    add_items(project, 200, gold=GOLD, prefix="gold")
    random.seed(20260302)
    leased_gold = _label(project, member, 120, gold_answer=GOLD)
    # Binomial(120, 0.25): mean 30, sd 4.7.
    assert 18 <= leased_gold <= 42
    gold_judgments = Judgment.objects.filter(project=project, rater=member, item__is_gold=True)
    assert gold_judgments.count() == leased_gold
    assert all(j.gold_correct for j in gold_judgments)
    assert gold_accuracy(project=project, rater=member) == (leased_gold, leased_gold)


def test_it_gives_no_gold_when_the_rate_is_zero(make_project, add_items, member):
    project = make_project(Kind.BINARY, gold_rate=0.0)
    add_items(project, 20)
    add_items(project, 20, gold=GOLD, prefix="gold")
    assert _label(project, member, 15, gold_answer=GOLD) == 0


def test_it_pauses_a_rater_below_the_threshold_after_enough_gold_answers(make_project, add_items, member):
    project = make_project(Kind.BINARY, gold_rate=1.0, gold_pause_threshold=0.8, gold_min_answers=5)
    add_items(project, 20)
    add_items(project, 20, gold=GOLD, prefix="gold")
    _label(project, member, 4, gold_answer={"winner": 1})  # four wrong answers: too few to judge
    assert not _membership(project, member).paused
    assert gold_accuracy(project=project, rater=member) == (0, 4)
    _label(project, member, 1, gold_answer={"winner": 1})
    membership = _membership(project, member)
    assert membership.paused
    assert "gold accuracy 0% on 5 answers" in membership.paused_reason
    with pytest.raises(RaterPaused):
        lease_next(project=project, rater=member)
    # Snapshots leave the paused rater's judgments out.
    assert member.id in paused_rater_ids(project=project)


def test_it_keeps_a_rater_who_is_accurate_enough(make_project, add_items, member):
    project = make_project(Kind.BINARY, gold_rate=1.0, gold_pause_threshold=0.6, gold_min_answers=5)
    add_items(project, 10)
    add_items(project, 10, gold=GOLD, prefix="gold")
    _label(project, member, 7, gold_answer=GOLD)
    assert gold_accuracy(project=project, rater=member) == (7, 7)
    assert not _membership(project, member).paused
    assert paused_rater_ids(project=project) == set()


def test_it_lets_a_manager_unpause_with_a_fresh_gold_window(make_project, add_items, member):
    project = make_project(Kind.BINARY, gold_rate=1.0, gold_pause_threshold=0.8, gold_min_answers=3)
    add_items(project, 10)
    add_items(project, 20, gold=GOLD, prefix="gold")
    _label(project, member, 3, gold_answer={"winner": 1})
    assert _membership(project, member).paused
    rater_unpause(project=project, rater=member)
    assert not _membership(project, member).paused
    # The next (correct) gold answer does not re-pause on the strength of the old wrong ones.
    _label(project, member, 3, gold_answer=GOLD)
    assert not _membership(project, member).paused
    assert gold_accuracy(project=project, rater=member) == (3, 6)


def test_it_reevaluates_every_rater_when_the_threshold_changes(make_project, add_items, member, make_user):
    project = make_project(Kind.BINARY, gold_rate=1.0, gold_pause_threshold=None, gold_min_answers=4)
    steady, manual = make_user("steady"), make_user("manual")
    for user in (steady, manual):
        Membership.objects.create(project=project, user=user)
    add_items(project, 10)
    add_items(project, 10, gold=GOLD, prefix="gold")
    random.seed(1)
    # member: 2 of 4 right (50 %); steady: 4 of 4 (100 %); manual: paused by hand.
    for i in range(4):
        assignment = lease_next(project=project, rater=member)
        judgment_submit(assignment=assignment, rater=member, value=GOLD if i < 2 else {"winner": 1})
    _label(project, steady, 4, gold_answer=GOLD)
    rater_pause(project=project, rater=manual, reason="copy-pasting answers")
    assert paused_rater_ids(project=project) == {manual.id}

    assert gold_settings_set(project=project, threshold=0.75) == {"paused": 1, "unpaused": 0}
    assert paused_rater_ids(project=project) == {member.id, manual.id}

    # Lowering the threshold lifts the automatic pause but never a manager's.
    assert gold_settings_set(project=project, threshold=0.4) == {"paused": 0, "unpaused": 1}
    assert paused_rater_ids(project=project) == {manual.id}
    assert _membership(project, manual).paused_reason == "copy-pasting answers"

    project.gold_pause_threshold = 0.9
    project.save()
    assert gold_recheck_all(project=project) == {"paused": 1, "unpaused": 0}


def test_it_rejects_a_threshold_outside_0_to_1(make_project):
    project = make_project(Kind.BINARY)
    with pytest.raises(ValueError, match="gold_pause_threshold"):
        gold_settings_set(project=project, threshold=1.5)


def test_it_leaves_a_paused_raters_judgments_out_of_snapshots(make_project, add_items, member, make_user):
    from pathlib import Path

    from annotation.exports.build import snapshot_build
    from annotation.exports.services import snapshot_create

    project = make_project(Kind.BINARY, overlap=2)
    other = make_user("careful")
    Membership.objects.create(project=project, user=other)
    add_items(project, 10)
    for rater in (member, other):
        _label(project, rater, 10, gold_answer=GOLD, normal_answer={"winner": 0})
    rater_pause(project=project, rater=member, reason="clicks at random")

    snapshot = snapshot_build(snapshot_id=snapshot_create(project=project, options={}, enqueue=False).id)
    assert snapshot.status == "ready", snapshot.error
    root = Path(snapshot.path)
    rows = sum(len((root / "judgments" / f"{split}.jsonl").read_text().splitlines()) for split in ("train", "test"))
    assert rows == 10  # the careful rater's ten; the paused rater's ten are left out
    everyone = snapshot_build(snapshot_id=snapshot_create(project=project, options={"exclude_paused": False}, enqueue=False).id)
    root = Path(everyone.path)
    assert sum(len((root / "judgments" / f"{split}.jsonl").read_text().splitlines()) for split in ("train", "test")) == 20
