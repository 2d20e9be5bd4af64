"""My work: a rater's history per project, changing an answer within the edit window (a new
version; snapshots use the latest, the raw export keeps both), skipped items back at the end of
the queue, and "remaining" agreeing with "All done"."""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from annotation.assignment import assignment_skip, lease_next
from annotation.exports import snapshot_create
from annotation.exports.build import snapshot_build
from annotation.judgments import judgment_submit
from annotation.kinds import Kind
from annotation.models import Judgment, JudgmentRevision
from annotation.my_work import EditWindowClosed, judgment_change

pytestmark = pytest.mark.django_db


def answered(project, rater, *values):
    """The rater answers the next items with these values, in order; returns the judgments."""
    out = []
    for value in values:
        lease = lease_next(project=project, rater=rater)
        out.append(judgment_submit(assignment=lease, rater=rater, value=value, rationale=f"because {value}")[0])
    return out


def my_work_url(project, judgment=None):
    return f"/projects/{project.slug}/my-work/" + (f"{judgment.id}/" if judgment else "")


def test_it_lists_my_judgments_newest_first_and_filters_by_answer(client_for, project, add_items, member, owner):
    add_items(project, 4)
    first, tie, second = answered(project, member, {"winner": 0}, {"winner": "tie"}, {"winner": 1})
    answered(project, owner, {"winner": 1})  # somebody else's: never on my page
    Judgment.objects.filter(id=first.id).update(created_at=timezone.now() - timedelta(minutes=5))
    page = client_for(member).get(my_work_url(project)).content.decode()
    rows = [int(x) for x in __import__("re").findall(r'data-judgment="(\d+)"', page)]
    assert rows == [second.id, tie.id, first.id]
    ties = client_for(member).get(my_work_url(project) + "?answer=tie").content.decode()
    assert f'data-judgment="{tie.id}"' in ties and f'data-judgment="{first.id}"' not in ties
    assert ">Tie<" in ties


def test_it_changes_an_answer_as_a_new_version_that_snapshots_use_and_the_raw_export_keeps(client_for, project, add_items, member, owner):
    add_items(project, 1)
    (judgment,) = answered(project, member, {"winner": 0})
    order = judgment.display_order
    response = client_for(member).post(my_work_url(project, judgment), {"winner": str(order[1]), "rationale": "second thoughts"})
    assert response.status_code == 302
    judgment.refresh_from_db()
    assert judgment.value == {"winner": order[1]} and judgment.version == 2 and judgment.rationale == "second thoughts"
    old = JudgmentRevision.objects.get(judgment=judgment)
    assert old.version == 1 and old.value == {"winner": 0}

    snapshot = snapshot_build(snapshot_id=snapshot_create(project=project, options={"test_share": 0.0}, created_by=owner, enqueue=False).id)
    folder = Path(snapshot.path)
    pairs = [json.loads(line) for line in (folder / "preference" / "train.jsonl").read_text().splitlines()]
    assert len(pairs) == 1 and pairs[0]["chosen"].startswith(f"Answer {order[1]} ")
    raw = [json.loads(line) for line in (folder / "judgments" / "train.jsonl").read_text().splitlines()]
    assert sorted((r["version"], r["latest"], json.loads(r["value"])["winner"]) for r in raw) == [(1, False, 0), (2, True, order[1])]
    assert "judgments changed by their rater (earlier versions in `judgments/` only): 1" in (folder / "README.md").read_text()


def test_it_refuses_a_change_after_the_window_and_on_projects_without_one(client_for, project, add_items, member):
    add_items(project, 2)
    late, never = answered(project, member, {"winner": 0}, {"winner": 1})
    Judgment.objects.filter(id=late.id).update(created_at=timezone.now() - timedelta(minutes=project.edit_window_minutes + 1))
    response = client_for(member).post(my_work_url(project, late), {"winner": "1"})
    assert response.status_code == 403 and b"window" in response.content
    assert Judgment.objects.get(id=late.id).version == 1
    project.edit_window_minutes = 0
    project.save()
    never.refresh_from_db()
    with pytest.raises(EditWindowClosed, match="does not let raters change"):
        judgment_change(judgment=never, rater=member, value={"winner": 0})
    assert b"cannot be changed" in client_for(member).get(my_work_url(project)).content


def test_a_change_is_checked_like_an_answer_and_only_by_its_rater(client_for, make_project, add_items, member, owner, outsider, researcher):
    project = make_project(Kind.RANKING, ranking_k=3)
    add_items(project, 1)
    (judgment,) = answered(project, member, {"ranking": [[0], [1], [2]]})
    bad = client_for(member).post(my_work_url(project, judgment), {"rank_0": "1", "rank_1": "1", "rank_2": "2"})
    assert bad.status_code == 400 and b"does not allow ties" in bad.content
    # Another member of the project, an outsider, a researcher: none of them reaches it.
    assert client_for(owner).get(my_work_url(project, judgment)).status_code == 404
    assert client_for(outsider).get(my_work_url(project)).status_code == 404
    assert client_for(researcher).get(my_work_url(project)).status_code == 403
    ok = client_for(member).post(my_work_url(project, judgment), {"rank_0": "3", "rank_1": "1", "rank_2": "2"})
    assert ok.status_code == 302
    assert Judgment.objects.get(id=judgment.id).value == {"ranking": [[1], [2], [0]]}


def test_skipped_items_come_back_at_the_end_and_the_page_counts_them(client_for, project, add_items, member):
    add_items(project, 2)
    first = lease_next(project=project, rater=member)
    assignment_skip(assignment=first, rater=member)
    page = client_for(member).get(f"/projects/{project.slug}/label/").content.decode()
    assert "1 skipped, back at the end" in page and "My work" in page
    second = lease_next(project=project, rater=member)
    assert second.item_id != first.item_id
    judgment_submit(assignment=second, rater=member, value={"winner": 0})
    back = lease_next(project=project, rater=member)
    assert back.id == first.id
    judgment_submit(assignment=back, rater=member, value={"winner": 1})
    assert lease_next(project=project, rater=member) is None


def test_remaining_and_all_done_agree_when_others_hold_the_last_items(client_for, project, add_items, member, owner):
    add_items(project, 1)
    lease_next(project=project, rater=owner)  # the only slot is held by another rater
    page = client_for(member).get(f"/projects/{project.slug}/label/").content.decode()
    assert 'data-state="done"' in page
    assert '<strong data-progress="remaining">0</strong>' in page
    assert "1 slot held by others right now" in page


def test_it_caps_a_changed_rationale_like_the_submit_does_and_keeps_what_was_typed(client_for, project, add_items, member):
    from annotation.submission import MAX_RATIONALE

    add_items(project, 1)
    (judgment,) = answered(project, member, {"winner": 0})
    client = client_for(member)
    too_long = "r" * (MAX_RATIONALE + 1)
    response = client.post(my_work_url(project, judgment), {"winner": "1", "rationale": too_long})
    assert response.status_code == 400
    html = response.content.decode()
    assert f"rationale: must be text of at most {MAX_RATIONALE} characters" in html
    assert too_long in html  # shown again in the box, not lost
    judgment.refresh_from_db()
    assert judgment.version == 1 and judgment.rationale == "because {'winner': 0}"
    assert not JudgmentRevision.objects.exists()
    response = client.post(my_work_url(project, judgment), {"winner": "1", "rationale": "r" * MAX_RATIONALE})
    assert response.status_code == 302
    judgment.refresh_from_db()
    assert judgment.version == 2 and len(judgment.rationale) == MAX_RATIONALE


@pytest.mark.skipif("connection.vendor != 'sqlite'", reason="PostgreSQL's jsonb cannot hold a lone surrogate at all")
def test_it_stores_a_revision_scrubbed_of_lone_surrogates(client_for, project, add_items, member, owner):
    """An answer stored before input was checked may hold a lone surrogate; changing it must not
    carry one into the revision table (and from there into the raw export)."""
    from annotation.my_work import revision_of

    add_items(project, 1)
    (judgment,) = answered(project, member, {"winner": 0})
    with connection.cursor() as cursor:
        cursor.execute("UPDATE annotation_judgment SET value = %s WHERE id = %s", ['{"winner": 0, "note": "bad \\ud800 note"}', judgment.id])
    response = client_for(member).post(my_work_url(project, judgment), {"winner": "1", "rationale": "changed"})
    assert response.status_code == 302
    with connection.cursor() as cursor:
        cursor.execute("SELECT value FROM annotation_judgmentrevision WHERE judgment_id = %s", [judgment.id])
        (stored,) = cursor.fetchone()
    assert "\\ud800" not in stored.lower() and json.loads(stored) == {"winner": 0, "note": "bad \ufffd note"}
    # Written scrubbed by the live columns' function, whatever the judgment in hand holds.
    in_hand = Judgment.objects.get(id=judgment.id)
    in_hand.value, in_hand.rationale = {"winner": 1, "note": "x\udfffy"}, "why \ud800"
    revision = revision_of(in_hand)
    assert revision.value == {"winner": 1, "note": "x\ufffdy"} and revision.rationale == "why \ufffd"
    # A revision stored with one before this fix is read back scrubbed, like Judgment.value.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE annotation_judgmentrevision SET value = %s WHERE judgment_id = %s", ['{"winner": 0, "note": "\\udc00"}', judgment.id])
    assert JudgmentRevision.objects.get(judgment=judgment).value == {"winner": 0, "note": "\ufffd"}
