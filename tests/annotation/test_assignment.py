"""Leases and submits, one rater at a time (the threaded proofs are in test_concurrency.py)."""
from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from annotation.assignment import RaterPaused, assignment_skip, lease_next, leases_expire
from annotation.judgments import LeaseLost, judgment_submit
from annotation.kinds import InvalidValue, Kind
from annotation.models import Assignment, Item, Judgment, Membership, Role
from annotation.progress import rater_progress


@pytest.fixture
def raters(make_user, project):
    def make(n: int, on=None):
        users = [make_user() for _ in range(n)]
        Membership.objects.bulk_create([Membership(project=on or project, user=u, role=Role.RATER) for u in users])
        return users

    return make


def answer(assignment, rater, winner=0, **extra):
    return judgment_submit(assignment=assignment, rater=rater, value={"winner": winner}, **extra)


def test_it_gives_each_item_to_overlap_distinct_raters_and_then_stops(project, add_items, raters):
    project.overlap = 2
    project.save()
    items = add_items(project, 3)
    users = raters(4)
    got = {u.id: [] for u in users}
    # Round-robin until nobody gets anything: every item ends with exactly two judgments.
    for _ in range(5):
        for user in users:
            lease = lease_next(project=project, rater=user)
            if lease is not None:
                got[user.id].append(lease.item_id)
                answer(lease, user)
    assert sorted(Item.objects.filter(project=project).values_list("judgment_count", flat=True)) == [2, 2, 2]
    for ids in got.values():
        assert len(ids) == len(set(ids)), "a rater saw an item twice"
    assert sum(len(ids) for ids in got.values()) == 6
    assert all(lease_next(project=project, rater=u) is None for u in users)
    assert {i.id for i in items} == set(Judgment.objects.values_list("item_id", flat=True))


def test_it_returns_the_open_lease_when_the_rater_asks_again(project, add_items, member):
    add_items(project, 3)
    first = lease_next(project=project, rater=member)
    again = lease_next(project=project, rater=member)
    assert again.id == first.id
    assert Assignment.objects.filter(rater=member).count() == 1


def test_it_serves_items_with_fewer_judgments_first(project, add_items, raters):
    project.overlap = 3
    project.save()
    add_items(project, 3)
    a, b = raters(2)
    first = lease_next(project=project, rater=a)
    answer(first, a)
    # b gets an untouched item, not the one a already judged.
    second = lease_next(project=project, rater=b)
    assert second.item_id != first.item_id
    answer(second, b)
    third = lease_next(project=project, rater=a)
    assert third.item_id not in (first.item_id, second.item_id)


def test_it_randomises_and_records_the_on_screen_order(make_project, add_items, member):
    project = make_project(Kind.RANKING, ranking_k=4)
    add_items(project, 30)
    orders = set()
    for _ in range(30):
        lease = lease_next(project=project, rater=member)
        assert sorted(lease.display_order) == [0, 1, 2, 3]
        orders.add(tuple(lease.display_order))
        judgment, _ = judgment_submit(assignment=lease, rater=member, value={"ranking": [[0], [1], [2], [3]]})
        assert judgment.display_order == lease.display_order
    assert len(orders) > 5


def test_it_returns_an_expired_lease_to_the_pool(project, add_items, raters):
    add_items(project, 1)
    a, b = raters(2)
    lease = lease_next(project=project, rater=a)
    assert lease_next(project=project, rater=b) is None
    later = timezone.now() + timedelta(seconds=project.lease_seconds + 1)
    again = lease_next(project=project, rater=b, now=later)
    assert again is not None and again.item_id == lease.item_id
    lease.refresh_from_db()
    assert lease.status == Assignment.Status.EXPIRED
    # The slot went to b, so a's late answer cannot be stored.
    with pytest.raises(LeaseLost):
        answer(lease, a)
    answer(again, b)
    assert Judgment.objects.count() == 1


def test_it_keeps_a_late_answer_when_the_slot_is_still_free(project, add_items, member):
    add_items(project, 1)
    lease = lease_next(project=project, rater=member)
    assert leases_expire(project=project, now=timezone.now() + timedelta(seconds=project.lease_seconds + 1)) == 1
    judgment, created = answer(lease, member)
    assert created and judgment.item_id == lease.item_id
    assert Item.objects.get(id=lease.item_id).taken == 1


def test_it_gives_a_skipped_item_to_others_and_back_to_the_skipper_at_the_end(project, add_items, raters):
    add_items(project, 3)
    a, b = raters(2)
    skipped = lease_next(project=project, rater=a)
    assert assignment_skip(assignment=skipped, rater=a)
    assert not assignment_skip(assignment=skipped, rater=a)
    other = lease_next(project=project, rater=a)
    assert other.item_id != skipped.item_id
    with pytest.raises(LeaseLost):
        answer(skipped, a)
    answer(other, a)
    # Another rater may take the skipped item meanwhile (overlap 1: its slot went back).
    taken = lease_next(project=project, rater=b)
    assert taken.item_id == skipped.item_id
    third = lease_next(project=project, rater=a)
    assert third.item_id not in (skipped.item_id, other.item_id)
    assignment_skip(assignment=third, rater=a)
    # The end of a's queue: what they skipped and is still open comes back, on the same row.
    again = lease_next(project=project, rater=a)
    assert again.id == third.id and again.status == Assignment.Status.ACTIVE
    answer(again, a)
    assert lease_next(project=project, rater=a) is None  # the first skip went to b


def test_it_stores_a_double_submit_once(project, add_items, member):
    add_items(project, 2)
    lease = lease_next(project=project, rater=member)
    first, created = answer(lease, member, client_key="k-1")
    repeat, created_again = answer(lease, member, client_key="k-1")
    # A retry from a client that lost its key is caught by (item, rater).
    other_key, created_third = answer(lease, member, winner=1, client_key="k-2")
    assert created and not created_again and not created_third
    assert first.id == repeat.id == other_key.id
    assert Judgment.objects.filter(rater=member).count() == 1
    assert Item.objects.get(id=lease.item_id).judgment_count == 1
    # The same key on a different item is a client bug, refused by name.
    nxt = lease_next(project=project, rater=member)
    with pytest.raises(InvalidValue) as bad:
        answer(nxt, member, client_key="k-1")
    assert bad.value.field == "client_key"


def test_it_refuses_a_value_that_does_not_fit_the_kind(project, add_items, member):
    project.allow_tie = False
    project.save()
    add_items(project, 1)
    lease = lease_next(project=project, rater=member)
    with pytest.raises(InvalidValue) as bad:
        answer(lease, member, winner="tie")
    assert bad.value.field == "winner"
    assert not Judgment.objects.exists()
    assert Assignment.objects.get(id=lease.id).status == Assignment.Status.ACTIVE


def test_it_mixes_gold_items_at_the_projects_gold_rate(project, add_items, raters):
    project.gold_rate = 0.25
    project.save()
    add_items(project, 400)
    add_items(project, 400, gold={"winner": 0}, prefix="g")
    (rater,) = raters(1)
    rng = random.Random(7)
    gold = 0
    for _ in range(200):
        lease = lease_next(project=project, rater=rater, rng=rng)
        gold += lease.is_gold
        answer(lease, rater)
    assert 30 <= gold <= 70  # 25% of 200 = 50
    assert Judgment.objects.filter(rater=rater, gold_correct__isnull=False).count() == gold


def test_it_shows_a_gold_item_to_every_rater_beyond_the_overlap(project, add_items, raters):
    project.gold_rate = 1.0
    project.save()
    add_items(project, 1, gold={"winner": 1}, prefix="g")
    add_items(project, 1)
    users = raters(3)
    for user in users:
        lease = lease_next(project=project, rater=user)
        assert lease.is_gold
        judgment, _ = answer(lease, user, winner=1)
        assert judgment.gold_correct is True
    assert Judgment.objects.filter(item__is_gold=True).count() == 3


def test_it_refuses_paused_raters(project, add_items, member):
    add_items(project, 1)
    Membership.objects.filter(project=project, user=member).update(paused=True, paused_reason="gold accuracy 20%")
    with pytest.raises(RaterPaused, match="gold accuracy 20%"):
        lease_next(project=project, rater=member)
    assert not Assignment.objects.exists()


def test_it_pauses_a_rater_who_fails_gold_items(project, add_items, member):
    project.gold_rate = 1.0
    project.gold_pause_threshold = 0.5
    project.gold_min_answers = 3
    project.save()
    add_items(project, 5, gold={"winner": 0}, prefix="g")
    for _ in range(3):
        answer(lease_next(project=project, rater=member), member, winner=1)
    with pytest.raises(RaterPaused, match="gold accuracy"):
        lease_next(project=project, rater=member)


def test_it_counts_progress(project, add_items, raters):
    project.overlap = 2
    project.save()
    add_items(project, 3)
    a, b = raters(2)
    assert rater_progress(project=project, rater=a) == {"done_today": 0, "done_total": 0, "remaining": 3}
    for _ in range(2):
        answer(lease_next(project=project, rater=a), a)
    assert rater_progress(project=project, rater=a) == {"done_today": 2, "done_total": 2, "remaining": 1}
    for _ in range(3):
        answer(lease_next(project=project, rater=b), b)
    # One open slot left in the project, on the item a has not done.
    assert rater_progress(project=project, rater=a)["remaining"] == 1
    assert rater_progress(project=project, rater=b) == {"done_today": 3, "done_total": 3, "remaining": 0}


def _plan(project, rater) -> str:
    """The plan of the statement that claims a slot (plain EXPLAIN: nothing is executed)."""
    from annotation.assignment import _claim_sql

    sql, params = _claim_sql(project=project, rater=rater, gold=False, skip_locked=connection.features.has_select_for_update_skip_locked)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ANALYZE annotation_item")
            cursor.execute("ANALYZE annotation_assignment")
            cursor.execute("EXPLAIN " + sql, params)
        else:
            cursor.execute("ANALYZE")
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        return "\n".join(" ".join(str(c) for c in row) for row in cursor.fetchall())


@pytest.mark.parametrize("selection", ["fewest", "random", "uncertain"])
def test_it_finds_the_next_item_by_an_index_range_scan(project, add_items, member, selection):
    """The bench repeats this on a million items; here the plan must already use the index,
    whatever the next-item order (the priority column is part of the index)."""
    project.overlap = 2
    project.selection = selection
    project.save()
    items = add_items(project, 3000)
    Item.objects.filter(id__in=[i.id for i in items[:1500]]).update(taken=2, judgment_count=2)
    if selection != "fewest":
        from annotation.selection import priorities_reset

        priorities_reset(project=project) if selection == "random" else Item.objects.filter(id__in=[i.id for i in items[::3]]).update(priority=0.25)
    plan = _plan(project, member)
    assert "item_next_idx" in plan, plan
    if connection.vendor == "postgresql":
        assert "Seq Scan on annotation_item" not in plan and "Sort" not in plan, plan
    else:
        # SEARCH = an index range; a bare "SCAN i" or a temp B-tree for ORDER BY would be a full pass.
        assert "SEARCH i USING COVERING INDEX item_next_idx" in plan or "SEARCH i USING INDEX item_next_idx" in plan, plan
        assert "USE TEMP B-TREE" not in plan, plan
