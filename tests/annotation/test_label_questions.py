"""The labelling page asks the project's questions beside the judgment (issue 22): every question
drawn (per response under its response, per item in the answer row), the plain q_ fields of the
page without JavaScript stored as canonical answers, a missing required answer refused (400,
naming the field, nothing stored, what was given still set), the next item's JSON carrying its
questions, My work showing and versioning the answers, adjudication showing them read-only.
The browser side (keys, layout, submit blocked) is tests/e2e/test_label_questions.py."""
from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

from annotation import questions
from annotation.kinds import Kind
from annotation.models import Assignment, Judgment, Membership, Role
from tests.annotation.htmlcheck import tags

ASKED = [
    {"key": "helpfulness", "label": "Helpfulness", "type": "scale", "per": "response", "min": 0, "max": 4, "required": True,
     "help": "Does it answer the question?", "scale_labels": ["none", "little", "some", "most", "all"]},
    {"key": "harm", "label": "Harm", "type": "labels", "per": "item", "choices": ["violence", "self_harm", "hate"]},
    {"key": "style", "label": "Style", "type": "labels", "per": "response", "choices": ["terse", "chatty"]},
    {"key": "note", "label": "Anything else?", "type": "text", "max_chars": 50},
]


@pytest.fixture
def asking(make_project):
    return make_project(Kind.BINARY, slug="asking", questions=questions.validate_questions(ASKED), edit_window_minutes=60)


def _open(web, project) -> tuple[str, Assignment]:
    r = web.get(reverse("annotation:label", kwargs={"slug": project.slug}))
    assert r.status_code == 200
    return r.content.decode(), Assignment.objects.filter(project=project).latest("id")


def _submit_url(project, assignment) -> str:
    return reverse("annotation:label-submit", kwargs={"slug": project.slug, "assignment_id": assignment.id})


def _cards(html: str) -> dict[int, str]:
    """Each response card's HTML by the candidate position it shows."""
    parts = html.split('<article class="candidate card"')[1:]
    return {int(re.search(r'data-position="(\d+)"', p).group(1)): p.split("</article>")[0] for p in parts}


def _inputs(html: str, name: str) -> list[dict]:
    return [attrs for tag, attrs in tags(html) if tag in ("input", "textarea") and attrs.get("name") == name]


def test_it_draws_each_question_under_its_response_and_the_item_questions_in_the_answer_row(client_for, member, asking, add_items):
    add_items(asking, 1)
    html, assignment = _open(client_for(member), asking)
    cards = _cards(html)
    assert sorted(cards) == [0, 1]
    for position, card in cards.items():
        # Five points 0..4, required (the browser's own check without JavaScript), and nothing of the other response.
        points = _inputs(card, f"q_helpfulness_{position}")
        assert [p["value"] for p in points] == ["0", "1", "2", "3", "4"] and all("required" in p for p in points)
        assert [p["value"] for p in _inputs(card, f"q_style_{position}")] == ["terse", "chatty"]
        assert not _inputs(card, f"q_helpfulness_{1 - position}") and not _inputs(card, "q_harm")
        assert "Does it answer the question?" in card and "4 = all" in card  # the "?" help
    answer_row = html.split('aria-label="Your answer"')[1]
    assert [p["value"] for p in _inputs(answer_row, "q_harm")] == ["violence", "self_harm", "hate"]
    assert _inputs(answer_row, "q_note")[0]["maxlength"] == "50"
    form = next(attrs for tag, attrs in tags(html) if tag == "form" and "data-questions" in attrs)
    assert [q["key"] for q in json.loads(form["data-questions"])] == ["helpfulness", "harm", "style", "note"]
    assert "<kbd>Q</kbd>" in html  # the keys panel names the question keys


def test_it_keeps_a_page_without_questions_as_it_was(client_for, member, project, add_items):
    add_items(project, 1)
    html, _ = _open(client_for(member), project)
    assert "data-question" not in html and "data-questions" not in html and "data-missing" not in html


def test_it_stores_the_plain_q_fields_of_the_page_without_javascript(client_for, member, asking, add_items):
    add_items(asking, 2)
    web = client_for(member)
    _, assignment = _open(web, asking)
    post = {"winner": str(assignment.display_order[0]), "q_helpfulness_0": "3", "q_helpfulness_1": "0",
            "q_harm": ["hate", "violence"], "q_style_1": "chatty", "q_note": "  a typo in B  "}
    r = web.post(_submit_url(asking, assignment), post)
    assert r.status_code == 302
    judgment = Judgment.objects.get()
    assert judgment.value == {"winner": assignment.display_order[0]}
    assert judgment.answers == {"helpfulness": [3, 0], "harm": ["violence", "hate"], "style": [[], ["chatty"]], "note": "a typo in B"}


def test_it_refuses_a_missing_required_answer_naming_the_field_and_keeps_what_was_given(client_for, member, asking, add_items):
    add_items(asking, 2)
    web = client_for(member)
    _, assignment = _open(web, asking)
    url = _submit_url(asking, assignment)
    r = web.post(url, {"winner": "0", "q_helpfulness_0": "3", "q_harm": "hate"})
    assert r.status_code == 400
    html = r.content.decode()
    assert "answers.helpfulness[1]: this question is required for every response" in html
    assert not Judgment.objects.exists()
    # The same item again, with the answers given still set.
    assert f'data-assignment="{assignment.id}"' in html
    assert [p["value"] for p in _inputs(html, "q_helpfulness_0") if "checked" in p] == ["3"]
    assert [p["value"] for p in _inputs(html, "q_harm") if "checked" in p] == ["hate"]
    # label.js's JSON post: the same refusal as JSON.
    r = web.post(url, {"value": {"winner": 0}, "answers": {"harm": []}}, content_type="application/json")
    assert r.status_code == 400 and r.json()["field"] == "answers.helpfulness", r.content
    r = web.post(url, {"winner": "0", "q_helpfulness_0": "3", "q_helpfulness_1": "7"}, HTTP_ACCEPT="application/json")
    assert r.status_code == 400 and r.json()["field"] == "answers.helpfulness[1]", r.content
    assert not Judgment.objects.exists()


def test_it_sends_the_next_item_with_its_questions(client_for, member, asking, add_items):
    add_items(asking, 2)
    web = client_for(member)
    _, assignment = _open(web, asking)
    r = web.post(_submit_url(asking, assignment), {"value": {"winner": 1}, "answers": {"helpfulness": [4, 2], "note": "ok"}}, content_type="application/json")
    assert r.status_code == 200, r.content
    assert Judgment.objects.get().answers == {"helpfulness": [4, 2], "note": "ok"}
    following = r.json()["next"]
    assert following["state"] == "item" and following["assignment"] != assignment.id
    assert [q["key"] for q in following["questions"]] == ["helpfulness", "harm", "style", "note"]
    cards = _cards(following["html"])
    assert all(len(_inputs(card, f"q_helpfulness_{p}")) == 5 for p, card in cards.items())
    assert _inputs(following["html"], "q_note")


def _answered(client_for, member, project, answers: dict) -> Judgment:
    web = client_for(member)
    _, assignment = _open(web, project)
    r = web.post(_submit_url(project, assignment), {"value": {"winner": 0}, "answers": answers}, content_type="application/json")
    assert r.status_code == 200, r.content
    return Judgment.objects.latest("id")


def test_it_lets_a_rater_see_and_change_the_answers_in_my_work(client_for, member, asking, add_items):
    add_items(asking, 1)
    judgment = _answered(client_for, member, asking, {"helpfulness": [3, 1], "harm": ["hate"]})
    web = client_for(member)
    url = reverse("annotation:my-judgment", kwargs={"slug": asking.slug, "judgment_id": judgment.id})
    html = web.get(url).content.decode()
    # In the words of the screen the rater saw: A is the response shown first.
    scores = [3, 1]
    first, second = judgment.display_order
    assert f"Helpfulness: <strong>A {scores[first]}, B {scores[second]}</strong>" in html
    assert [p["value"] for p in _inputs(html, "q_helpfulness_0") if "checked" in p] == ["3"]
    assert [p["value"] for p in _inputs(html, "q_helpfulness_1") if "checked" in p] == ["1"]
    assert [p["value"] for p in _inputs(html, "q_harm") if "checked" in p] == ["hate"]

    # A required answer taken away: refused, naming it; nothing changes.
    r = web.post(url, {"winner": "0", "q_helpfulness_0": "3"})
    assert r.status_code == 400 and "answers.helpfulness[1]" in r.content.decode()
    judgment.refresh_from_db()
    assert judgment.version == 1

    r = web.post(url, {"winner": "0", "q_helpfulness_0": "2", "q_helpfulness_1": "4", "q_style_0": "terse", "q_note": "better now"})
    assert r.status_code == 302
    judgment.refresh_from_db()
    assert judgment.version == 2
    assert judgment.answers == {"helpfulness": [2, 4], "harm": [], "style": [["terse"], []], "note": "better now"}
    assert list(judgment.revisions.values_list("answers", flat=True)) == [{"helpfulness": [3, 1], "harm": ["hate"]}]
    # The page lists the earlier version's answers too.
    html = web.get(url).content.decode()
    earlier = html.split("Earlier versions")[1]
    assert "version 1" in earlier and "Harm: hate" in earlier and "Helpfulness:" in earlier and "Note: better now" not in earlier
    assert "Anything else?: <strong>better now</strong>" in html


def test_it_shows_the_raters_answers_on_adjudication_read_only(client_for, member, owner, asking, add_items):
    add_items(asking, 1)
    _answered(client_for, member, asking, {"helpfulness": [3, 1], "harm": ["hate"]})
    item = Judgment.objects.get().item
    url = reverse("annotation:adjudication-item", kwargs={"slug": asking.slug, "item_id": item.id})
    html = client_for(owner).get(url).content.decode()
    # Adjudication names responses by position (A = position 0).
    assert "Helpfulness: A 3, B 1" in html and "Harm: hate" in html
    assert not _inputs(html, "q_helpfulness_0")  # read-only: no question fields in the final-answer form


def test_it_shows_the_questions_to_nobody_outside_the_project(client_for, outsider, researcher, asking, add_items):
    add_items(asking, 1)
    assert client_for(outsider).get(reverse("annotation:label", kwargs={"slug": asking.slug})).status_code == 404
    assert client_for(researcher).get(reverse("annotation:label", kwargs={"slug": asking.slug})).status_code == 403
    assert Membership.objects.filter(project=asking, role=Role.RATER).exists()
