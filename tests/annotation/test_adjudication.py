"""Adjudication: managers see the most disputed items first with every rater's answer and
rationale, set a final answer, and snapshots use it where asked (the card counts them)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from annotation.adjudication import adjudication_set, disagreement_queue
from annotation.exports import snapshot_create
from annotation.exports.build import snapshot_build
from annotation.kinds import Kind
from annotation.models import Adjudication, Judgment, Membership, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def disputed(project, add_items, make_user):
    """Three raters on four items: one unanimous, one 2-1, one 1-1-1 (tie/A/B), one judged once."""
    raters = [make_user(f"judge{i}") for i in range(3)]
    for rater in raters:
        Membership.objects.create(project=project, user=rater, role=Role.RATER)
    items = add_items(project, 4)
    answers = {0: [0, 0, 0], 1: [0, 0, 1], 2: [0, 1, "tie"], 3: [1]}
    for i, winners in answers.items():
        for rater, winner in zip(raters, winners):
            Judgment.objects.create(project=project, item=items[i], rater=rater, kind=project.kind, value={"winner": winner},
                                    display_order=[1, 0], rationale=f"{rater.username} on item {i}")
    for item in items:
        item.judgment_count = Judgment.objects.filter(item=item).count()
        item.save(update_fields=["judgment_count"])
    return items, raters


def test_it_orders_items_by_lowest_agreement_first(project, disputed):
    items, _ = disputed
    queue = disagreement_queue(project=project)
    assert [row.item_id for row in queue] == [items[2].id, items[1].id, items[0].id]  # item 3 has one judgment
    # A three-way split has no consensus: agreement 0.
    assert [row.agreement for row in queue] == [0.0, pytest.approx(2 / 3, abs=1e-3), 1.0]


def test_a_manager_sees_every_answer_and_rationale_and_sets_the_final_answer(client_for, project, disputed, owner):
    items, raters = disputed
    client = client_for(owner)
    queue_page = client.get(f"/projects/{project.slug}/adjudication/").content.decode()
    # Only the items that need a decision: item 0's raters all agree (it is listed under show=all).
    assert re.findall(r'data-item="([^"]+)"', queue_page) == [items[2].external_id, items[1].external_id]
    url = f"/projects/{project.slug}/adjudication/{items[2].id}/"
    page = client.get(url).content.decode()
    for rater in raters:
        assert f'data-rater="{rater.username}"' in page and f"{rater.username} on item 2" in page
    # Answers are named by candidate position on this page: A = position 0, whatever each rater saw.
    assert "<strong>A better</strong>" in page and "<strong>B better</strong>" in page and "<strong>Tie</strong>" in page
    response = client.post(url, {"winner": "1", "note": "B is right: A has a bug"})
    assert response.status_code == 302
    final = Adjudication.objects.get(item=items[2])
    assert final.value == {"winner": 1} and final.decided_by == owner and "bug" in final.note
    assert f'data-item="{items[2].external_id}"' not in client.get(f"/projects/{project.slug}/adjudication/").content.decode()
    assert f'data-item="{items[2].external_id}"' in client.get(f"/projects/{project.slug}/adjudication/?show=all").content.decode()
    assert client.post(url, {"winner": "7"}).status_code == 400


def test_only_managers_adjudicate(client_for, project, disputed, member, researcher, outsider):
    items, _ = disputed
    for user, status in ((member, 403), (researcher, 403), (outsider, 404)):
        assert client_for(user).get(f"/projects/{project.slug}/adjudication/").status_code == status
        assert client_for(user).post(f"/projects/{project.slug}/adjudication/{items[2].id}/", {"winner": "1"}).status_code == status
    assert not Adjudication.objects.exists()


def test_snapshots_use_adjudicated_answers_only_when_asked_and_the_card_counts_them(project, disputed, owner):
    items, _ = disputed
    adjudication_set(project=project, item=items[2], value={"winner": 1}, note="", decided_by=owner)

    def pairs(**options):
        snapshot = snapshot_build(snapshot_id=snapshot_create(project=project, options={"test_share": 0.0, **options}, created_by=owner, enqueue=False).id)
        folder = Path(snapshot.path)
        rows = [json.loads(line) for line in (folder / "preference" / "train.jsonl").read_text().splitlines()]
        return {r["prompt"]: r["chosen"] for r in rows}, (folder / "README.md").read_text()

    plain, card = pairs()
    assert items[2].prompt not in plain  # 1-1-1: no majority, no pair
    assert "items adjudicated by a manager and used: 0" in card
    used, card = pairs(use_adjudicated=True)
    assert used[items[2].prompt].startswith("Answer 1 ")
    assert used[items[1].prompt] == plain[items[1].prompt]
    assert "items adjudicated by a manager and used: 1" in card and "used where a manager set one" in card


def test_the_build_form_offers_the_option(client_for, project, owner):
    page = client_for(owner).get(f"/projects/{project.slug}/datasets/").content.decode()
    assert "Use adjudicated answers where set" in page and 'name="use_adjudicated"' in page


def test_rankings_are_adjudicated_too(client_for, make_project, add_items, member, owner):
    project = make_project(Kind.RANKING, ranking_k=3, overlap=2)
    (item,) = add_items(project, 1)
    for rater, ranking in ((member, [[0], [1], [2]]), (owner, [[2], [1], [0]])):
        Judgment.objects.create(project=project, item=item, rater=rater, kind=project.kind, value={"ranking": ranking}, display_order=[0, 1, 2])
    item.judgment_count = 2
    item.save(update_fields=["judgment_count"])
    response = client_for(owner).post(f"/projects/{project.slug}/adjudication/{item.id}/", {"rank_0": "2", "rank_1": "1", "rank_2": "3"})
    assert response.status_code == 302
    assert Adjudication.objects.get(item=item).value == {"ranking": [[1], [0], [2]]}


def test_it_caps_the_note_like_a_raters_rationale_and_keeps_what_was_typed(client_for, project, disputed, owner):
    from annotation.submission import MAX_RATIONALE

    items, _ = disputed
    url = f"/projects/{project.slug}/adjudication/{items[2].id}/"
    client = client_for(owner)
    too_long = "n" * (MAX_RATIONALE + 1)
    response = client.post(url, {"winner": "1", "note": too_long})
    assert response.status_code == 400
    html = response.content.decode()
    assert f"note: must be text of at most {MAX_RATIONALE} characters" in html
    assert too_long in html  # the manager's text is shown again, not lost
    assert not Adjudication.objects.exists()
    response = client.post(url, {"winner": "1", "note": "n" * MAX_RATIONALE})
    assert response.status_code == 302
    assert len(Adjudication.objects.get(item=items[2]).note) == MAX_RATIONALE
    assert MAX_RATIONALE == 10_000  # the figure raters and managers are told
