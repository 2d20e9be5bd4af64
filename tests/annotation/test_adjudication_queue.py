"""The adjudication queue lists only the items that need a decision (raters disagree, or one of
them flagged the item), names each by its prompt and responses rather than an importer's id,
and "save and next" walks a manager through them without going back to the list."""
from __future__ import annotations

import re

import pytest

from annotation.models import Adjudication, Candidate, Item, Judgment, Membership, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def judged(project, make_user):
    """Two raters on four items: agreed, agreed but flagged, split, split. Ids look like a demo's."""
    raters = [make_user(f"rater{i}") for i in range(2)]
    for rater in raters:
        Membership.objects.create(project=project, user=rater, role=Role.RATER)
    cases = [
        ("gold-001", "How tall is Everest?", [0, 0], [[], []]),
        ("gold-002", "Is this answer offensive?", [1, 1], [["offensive"], []]),
        ("q-017", "Explain recursion to a child", [0, 1], [[], []]),
        ("q-018", "Write a haiku about rain", [1, "tie"], [[], []]),
    ]
    items = []
    for external_id, prompt, winners, flags in cases:
        item = Item.objects.create(project=project, external_id=external_id, prompt=prompt, judgment_count=2)
        Candidate.objects.bulk_create([Candidate(item=item, position=p, text=f"Response {p} for {prompt.split()[0].lower()}: {'x' * 90}") for p in range(2)])
        for rater, winner, flag in zip(raters, winners, flags):
            Judgment.objects.create(project=project, item=item, rater=rater, kind=project.kind, value={"winner": winner}, display_order=[0, 1], flags=flag)
        items.append(item)
    return items


def listed(client, project, query=""):
    html = client.get(f"/projects/{project.slug}/adjudication/{query}").content.decode()
    return html, re.findall(r'data-item="([^"]+)"', html)


def test_it_lists_only_items_whose_raters_disagree_or_flagged_them(client_for, owner, project, judged):
    html, ids = listed(client_for(owner), project)
    # The split items first (lowest agreement), then the flagged one; the unanimous item is not there.
    assert ids == ["q-017", "q-018", "gold-002"]
    assert "flagged" in html
    _, every = listed(client_for(owner), project, "?show=all")
    assert set(every) == {"gold-001", "gold-002", "q-017", "q-018"}


def test_it_names_items_by_prompt_and_responses_not_ids(client_for, owner, project, judged):
    html, _ = listed(client_for(owner), project)
    cells = re.findall(r"<td data-snippet>(.*?)</td>", html)
    assert cells[0] == "Explain recursion to a child"
    assert "Response 0 for explain:" in html and "Response 1 for explain:" in html
    assert "…" in html  # a long response is cut short, not poured into the table
    visible = re.sub(r'data-item="[^"]*"', "", html)
    for external_id in ("gold-002", "q-017", "q-018"):
        assert external_id not in visible, external_id
    item_page = client_for(owner).get(f"/projects/{project.slug}/adjudication/{judged[2].id}/").content.decode()
    assert "q-017" not in item_page and "Save and next" in item_page


def test_save_and_next_opens_the_next_item_to_decide_then_the_list(client_for, owner, project, judged):
    client = client_for(owner)
    first, second, flagged = judged[2], judged[3], judged[1]
    response = client.post(f"/projects/{project.slug}/adjudication/{first.id}/", {"winner": "0", "action": "set_next"})
    assert response.status_code == 302 and response["Location"] == f"/projects/{project.slug}/adjudication/{second.id}/"
    assert Adjudication.objects.get(item=first).value == {"winner": 0}
    response = client.post(response["Location"], {"winner": "tie", "action": "set_next"})
    assert response["Location"] == f"/projects/{project.slug}/adjudication/{flagged.id}/"
    response = client.post(response["Location"], {"winner": "1", "action": "set_next"})
    # Nothing left to decide: back to the (now empty) list, which says so.
    assert response["Location"] == f"/projects/{project.slug}/adjudication/"
    html, ids = listed(client, project)
    assert ids == [] and "No item needs a decision" in html
    # Plain "Save" still goes back to the list.
    response = client.post(f"/projects/{project.slug}/adjudication/{first.id}/", {"winner": "1", "action": "set"})
    assert response["Location"] == f"/projects/{project.slug}/adjudication/"


def test_only_managers_see_the_queue(client_for, member, researcher, outsider, project, judged):
    for user, status in ((member, 403), (researcher, 403), (outsider, 404)):
        assert client_for(user).get(f"/projects/{project.slug}/adjudication/").status_code == status
