"""Raters cannot tell gold items apart: nothing a rater is shown, on a page or in an API answer,
names or marks an item as gold. The demo calls its gold items gold-001..., so an external id alone
would give them away; a rater's My work names items by the start of their prompt instead.
Managers (and researchers) still see the ids."""
from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

from annotation.models import Candidate, Item, Judgment

pytestmark = pytest.mark.django_db

GOLD = {"winner": 0}


@pytest.fixture
def gold_project(project):
    """Two gold items named like the demo's (gold-001, gold-002) beside two ordinary ones, every
    text free of the word, gold first in a rater's queue."""
    project.gold_rate = 1.0
    project.save()
    rows = [("gold-001", "Which planet is largest?", GOLD), ("gold-002", "What is 2 + 2?", GOLD), ("q-1", "Name a <b>colour</b> & a fruit", None), ("q-2", "Tell a joke", None)]
    for external_id, prompt, gold in rows:
        item = Item.objects.create(project=project, external_id=external_id, prompt=prompt, gold=gold, is_gold=gold is not None)
        Candidate.objects.bulk_create([Candidate(item=item, position=p, text=f"Response {p}", model_name=f"model-{p}") for p in range(2)])
    return project


def label_everything(api, project) -> list[str]:
    """Answer the whole queue through the rater API; every response body the rater got."""
    bodies = []
    while True:
        r = api.post(reverse("api-rater-next", kwargs={"slug": project.slug}))
        bodies.append(r.content.decode())
        if r.status_code != 200:
            break
        r = api.post(reverse("api-rater-submit", kwargs={"assignment_id": r.json()["assignment"]}), {"value": GOLD, "rationale": "why not"}, format="json")
        assert r.status_code in (200, 201), r.content
        bodies.append(r.content.decode())
    return bodies


def assert_blind(body: str, where: str) -> None:
    assert "gold" not in body.lower(), f"{where} tells a rater which items are gold: {re.findall(r'.{0,60}gold.{0,60}', body, flags=re.I)[:3]}"


def test_it_names_no_gold_item_anywhere_a_rater_looks(gold_project, member, client_for, api_for):
    project = gold_project
    api = api_for(member)
    for i, body in enumerate(label_everything(api, project)):
        assert_blind(body, f"API answer {i}")
    mine = Judgment.objects.filter(rater=member)
    assert mine.filter(item__is_gold=True).count() == 2 and mine.count() == 4  # the rater did answer gold items

    client = client_for(member)
    page = client.get(f"/projects/{project.slug}/my-work/")
    assert page.status_code == 200
    html = page.content.decode()
    assert_blind(html, "My work")
    # Each item is named by its prompt (escaped), not its id.
    assert "Which planet is largest?" in html and "What is 2 + 2?" in html
    assert "Name a &lt;b&gt;colour&lt;/b&gt; &amp; a fruit" in html and "<b>colour" not in html
    assert "q-1" not in html and "q-2" not in html
    for judgment in mine:
        detail = client.get(f"/projects/{project.slug}/my-work/{judgment.id}/")
        assert detail.status_code == 200
        assert_blind(detail.content.decode(), f"My work, judgment of {judgment.item.external_id}")
        assert judgment.item.prompt.split("<")[0].strip() in detail.content.decode()
    listed = api.get(reverse("api-rater-judgments", kwargs={"slug": project.slug}))
    assert listed.status_code == 200 and len(listed.json()["results"]) == 4
    assert_blind(listed.content.decode(), "the rater's judgment list")
    for path in ("", "label/", "label/next/"):
        assert_blind(client.get(f"/projects/{project.slug}/{path}").content.decode(), f"/{path}")


def test_it_still_shows_a_manager_the_ids_on_their_own_work(gold_project, owner, client_for, api_for):
    label_everything(api_for(owner), gold_project)
    html = client_for(owner).get(f"/projects/{gold_project.slug}/my-work/").content.decode()
    assert "gold-001" in html and "gold-002" in html and "q-1" in html
    judgment = Judgment.objects.get(rater=owner, item__external_id="gold-001")
    assert "gold-001" in client_for(owner).get(f"/projects/{gold_project.slug}/my-work/{judgment.id}/").content.decode()
    everyone = api_for(owner).get(reverse("api-rater-judgments", kwargs={"slug": gold_project.slug}) + "?all=1").json()["results"]
    assert sum(1 for j in everyone if j["gold_correct"] is not None) == 2


def test_it_names_a_chat_item_by_its_last_question_cut_short(project, member, client_for, api_for):
    long_question = "Why " + "really " * 40 + "now?"
    item = Item.objects.create(project=project, external_id="gold-chat", prompt=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": long_question}])
    Candidate.objects.bulk_create([Candidate(item=item, position=p, text=f"Response {p}") for p in range(2)])
    label_everything(api_for(member), project)
    html = client_for(member).get(f"/projects/{project.slug}/my-work/").content.decode()
    assert_blind(html, "My work")
    cell = re.search(r"<td data-item>(.*?)</td>", html).group(1)
    assert cell.startswith("Why really") and cell.endswith("…") and len(cell) <= 80 and "Be brief" not in cell
    assert json.dumps(long_question) not in html
