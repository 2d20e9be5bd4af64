"""The labelling page and its endpoints: who may label, each kind end to end in canonical
positions, double submits, skips, paused raters, and the plain-form path without JavaScript."""
from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from annotation.kinds import Kind
from annotation.models import Assignment, Candidate, Item, Judgment, Membership
from tests.annotation.htmlcheck import executable_parts

pytestmark = pytest.mark.django_db


def label_url(project):
    return f"/projects/{project.slug}/label/"


def next_item(client, project) -> dict:
    response = client.get(f"{label_url(project)}next/")
    assert response.status_code == 200, response.content
    return response.json()


def submit(client, project, assignment_id, body, **headers):
    return client.post(f"{label_url(project)}{assignment_id}/submit/", json.dumps(body), content_type="application/json", **headers)


def choice_values(html: str) -> dict[str, dict]:
    """data-key -> the canonical answer the button stands for, as the page hands it to label.js."""
    found = re.findall(r'data-key="([^"]+)" data-value="([^"]+)"', html)
    return {key: json.loads(value.replace("&quot;", '"')) for key, value in found}


# --- who may label ------------------------------------------------------------------------------


def test_it_shows_a_rater_the_prompt_and_the_candidates_in_the_recorded_order(client_for, member, project, add_items):
    add_items(project, 1)
    response = client_for(member).get(label_url(project))
    assert response.status_code == 200
    html = response.content.decode()
    assignment = Assignment.objects.get(rater=member)
    assert "Question 0?" in html
    shown = [int(p) for p in re.findall(r'class="candidate card" data-position="(\d+)"', html)]
    assert shown == assignment.display_order and sorted(shown) == [0, 1]
    # Shortcuts are on screen, and the script is a static file (the CSP forbids inline scripts).
    assert "<kbd>Enter</kbd>" in html and "<kbd>S</kbd>" in html
    assert re.search(r'<script src="/static/js/label\.js"', html)
    assert "<script>" not in html and " onclick=" not in html


def test_it_lets_a_manager_label(client_for, owner, project, add_items):
    add_items(project, 1)
    payload = next_item(client_for(owner), project)
    assert payload["state"] == "item"
    assert Assignment.objects.filter(rater=owner).count() == 1


def test_it_lets_staff_label_any_project(client_for, staff, project, add_items):
    add_items(project, 1)
    client = client_for(staff)
    payload = next_item(client, project)
    assert payload["state"] == "item"
    assert submit(client, project, payload["assignment"], {"value": {"winner": 1}, "client_key": "st"}).status_code == 200
    assert Judgment.objects.get().rater == staff


def test_it_refuses_a_researcher_who_is_not_a_rater(client_for, researcher, project, add_items):
    add_items(project, 1)
    client = client_for(researcher)
    assert client.get(label_url(project)).status_code == 403
    assert client.get(f"{label_url(project)}next/").status_code == 403
    assert not Assignment.objects.filter(rater=researcher).exists()


def test_it_shows_an_outsider_nothing(client_for, member, outsider, project, add_items):
    add_items(project, 1)
    lease = next_item(client_for(member), project)["assignment"]
    client = client_for(outsider)
    assert client.get(label_url(project)).status_code == 404
    assert client.get(f"{label_url(project)}next/").status_code == 404
    response = submit(client, project, lease, {"value": {"winner": 0}, "client_key": "k"})
    assert response.status_code == 404
    assert client.post(f"{label_url(project)}{lease}/skip/").status_code == 404
    assert b"Question" not in response.content
    assert not Judgment.objects.exists()
    assert Assignment.objects.get(id=lease).status == Assignment.Status.ACTIVE


def test_it_sends_anonymous_visitors_to_the_login_page(client, project, add_items):
    add_items(project, 1)
    response = client.get(label_url(project))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert not Assignment.objects.exists()


def test_it_keeps_one_raters_lease_from_another(client_for, make_user, member, project, add_items):
    other = make_user("other-rater")
    Membership.objects.create(project=project, user=other, role="rater")
    add_items(project, 2)
    lease = next_item(client_for(member), project)["assignment"]
    response = submit(client_for(other), project, lease, {"value": {"winner": 0}})
    assert response.status_code == 404
    assert not Judgment.objects.exists()


# --- each kind, end to end, stored by position ---------------------------------------------------


def test_it_stores_a_binary_answer_by_position_not_by_screen_side(client_for, member, project, add_items):
    add_items(project, 1)
    client = client_for(member)
    payload = next_item(client, project)
    order = payload["display_order"]
    buttons = choice_values(payload["html"])
    # The rater presses B: the response shown on the right.
    assert buttons["b"] == {"winner": order[1]}
    assert buttons["a"] == {"winner": order[0]}
    assert buttons["t"] == {"winner": "tie"} and buttons["x"] == {"winner": "both_bad"}
    response = submit(client, project, payload["assignment"], {"value": buttons["b"], "duration_ms": 4200, "client_key": "k-1", "rationale": " clearer "})
    assert response.status_code == 200, response.content
    judgment = Judgment.objects.get()
    assert judgment.value == {"winner": order[1]}
    assert judgment.display_order == order
    assert judgment.duration_ms == 4200 and judgment.rationale == "clearer" and judgment.client_key == "k-1"
    assert Candidate.objects.get(item=judgment.item, position=order[1]).text in payload["html"]


def test_it_hides_tie_and_both_bad_where_the_project_forbids_them(client_for, member, make_project, add_items):
    project = make_project(Kind.BINARY, allow_tie=False, allow_both_bad=False)
    add_items(project, 1)
    buttons = choice_values(next_item(client_for(member), project)["html"])
    assert set(buttons) == {"a", "b"}


def test_it_maps_the_likert_scale_to_positions(client_for, member, make_project, add_items):
    project = make_project(Kind.LIKERT, likert_points=7)
    add_items(project, 1)
    client = client_for(member)
    payload = next_item(client, project)
    left, right = payload["display_order"]
    points = choice_values(payload["html"])
    assert points["1"] == {"winner": left, "strength": 3}
    assert points["3"] == {"winner": left, "strength": 1}
    assert points["4"] == {"winner": "tie", "strength": 0}
    assert points["7"] == {"winner": right, "strength": 3}
    assert "B much better" in payload["html"] and "About the same" in payload["html"]
    assert submit(client, project, payload["assignment"], {"value": points["6"], "client_key": "l1"}).status_code == 200
    assert Judgment.objects.get().value == {"winner": right, "strength": 2}


def test_it_stores_a_ranking_and_hands_out_the_next_item(client_for, member, make_project, add_items):
    project = make_project(Kind.RANKING, ranking_k=4)
    add_items(project, 2)
    client = client_for(member)
    payload = next_item(client, project)
    order = payload["display_order"]
    assert len(order) == 4
    # The rater ranks the cards right to left, as shown on screen.
    ranking = [[p] for p in reversed(order)]
    response = submit(client, project, payload["assignment"], {"value": {"ranking": ranking}, "duration_ms": 900, "client_key": "r1"})
    body = response.json()
    assert response.status_code == 200 and body["created"] is True
    assert Judgment.objects.get().value == {"ranking": ranking}
    assert body["next"]["state"] == "item" and body["next"]["assignment"] != payload["assignment"]
    assert body["next"]["progress"]["done_today"] == 1
    assert 'data-index="4"' in body["next"]["html"]


def test_it_stores_ratings_per_candidate_position(client_for, member, make_project, add_items):
    project = make_project(Kind.RATING, rating_min=1, rating_max=5)
    add_items(project, 1, candidates=2)
    client = client_for(member)
    payload = next_item(client, project)
    assert 'name="score_0"' in payload["html"] and 'data-key="5"' in payload["html"]
    response = submit(client, project, payload["assignment"], {"value": {"scores": [2, 5]}, "client_key": "s1"})
    assert response.status_code == 200
    assert Judgment.objects.get().value == {"scores": [2, 5]}


def test_it_rejects_a_bad_answer_naming_the_field_and_keeps_the_lease(client_for, member, make_project, add_items):
    project = make_project(Kind.RANKING, ranking_k=3)
    add_items(project, 1)
    client = client_for(member)
    lease = next_item(client, project)["assignment"]
    response = submit(client, project, lease, {"value": {"ranking": [[0], [0], [1]]}, "client_key": "bad"})
    assert response.status_code == 400
    assert response.json()["field"] == "ranking" and "exactly once" in response.json()["error"]
    response = submit(client, project, lease, {"value": {"ranking": [[0], [1], [2]]}, "duration_ms": -5})
    assert response.status_code == 400 and response.json()["field"] == "duration_ms"
    assert not Judgment.objects.exists()
    assert Assignment.objects.get(id=lease).status == Assignment.Status.ACTIVE


# --- repeats, skips, lost leases, pauses ---------------------------------------------------------


def test_it_stores_a_double_submit_once(client_for, member, project, add_items):
    add_items(project, 3)
    client = client_for(member)
    payload = next_item(client, project)
    body = {"value": {"winner": 0}, "duration_ms": 1500, "client_key": "same-key"}
    first = submit(client, project, payload["assignment"], body)
    second = submit(client, project, payload["assignment"], body)
    assert first.status_code == second.status_code == 200
    assert first.json()["created"] is True and second.json()["created"] is False
    assert first.json()["judgment"] == second.json()["judgment"]
    assert Judgment.objects.count() == 1
    assert Item.objects.get(id=Judgment.objects.get().item_id).judgment_count == 1


def test_it_skips_an_item_and_shows_it_again_at_the_end_of_the_queue(client_for, member, project, add_items):
    add_items(project, 2)
    client = client_for(member)
    first = next_item(client, project)
    response = client.post(f"{label_url(project)}{first['assignment']}/skip/", HTTP_ACCEPT="application/json")
    body = response.json()
    assert response.status_code == 200 and body["skipped"] is True
    assert body["next"]["state"] == "item" and body["next"]["assignment"] != first["assignment"]
    assert Assignment.objects.get(id=first["assignment"]).status == Assignment.Status.SKIPPED
    back = submit(client, project, body["next"]["assignment"], {"value": {"winner": 1}, "client_key": "x"}).json()["next"]
    assert back["state"] == "item" and back["assignment"] == first["assignment"] and back["progress"]["remaining"] == 1
    done = submit(client, project, back["assignment"], {"value": {"winner": 0}, "client_key": "y"}).json()["next"]
    assert done["state"] == "done" and done["progress"]["remaining"] == 0


def test_it_tells_the_rater_when_nothing_is_left(client_for, member, project):
    response = client_for(member).get(label_url(project))
    assert response.status_code == 200
    assert b"nothing left for you" in response.content


def test_it_answers_a_lost_lease_with_409_and_the_next_item(client_for, make_user, member, project, add_items, settings):
    settings.ARBITER_LEASE_SWEEP_SECONDS = 0  # return expired leases on the next request
    add_items(project, 1)
    client = client_for(member)
    lease = next_item(client, project)["assignment"]
    # The lease runs out and another rater takes the only slot of that item.
    Assignment.objects.filter(id=lease).update(expires_at=timezone.now() - timedelta(seconds=1))
    other = make_user("other")
    Membership.objects.create(project=project, user=other, role="rater")
    stolen_payload = next_item(client_for(other), project)
    assert stolen_payload["state"] == "item", stolen_payload
    stolen = stolen_payload["assignment"]
    assert Assignment.objects.get(id=stolen).item_id == Assignment.objects.get(id=lease).item_id
    add_items(project, 1)
    response = submit(client, project, lease, {"value": {"winner": 0}, "client_key": "late"})
    assert response.status_code == 409
    assert "expired" in response.json()["error"]
    assert response.json()["next"]["state"] == "item"
    assert not Judgment.objects.filter(rater=member).exists()


def test_it_shows_a_paused_rater_a_clear_message(client_for, member, project, add_items):
    add_items(project, 2)
    Membership.objects.filter(project=project, user=member).update(paused=True, paused_reason="gold accuracy 40% on 5 answers is below 70%")
    client = client_for(member)
    response = client.get(label_url(project))
    html = response.content.decode()
    assert response.status_code == 200
    assert "You are paused on this project" in html and "gold accuracy 40% on 5 answers is below 70%" in html
    assert "Question" not in html
    assert next_item(client, project)["state"] == "paused"
    assert not Assignment.objects.exists()


def test_it_pauses_a_rater_the_moment_their_gold_answers_fail(client_for, member, project, add_items):
    # The submit that pauses the rater must not hand them another item in the same response.
    project.gold_rate, project.gold_pause_threshold, project.gold_min_answers = 1.0, 0.5, 3
    project.save()
    add_items(project, 5, gold={"winner": 0}, prefix="g")
    client = client_for(member)
    payload = next_item(client, project)
    for i in range(3):
        response = submit(client, project, payload["assignment"], {"value": {"winner": 1}, "client_key": f"g{i}"})
        assert response.status_code == 200, response.content
        payload = response.json()["next"]
    assert payload["state"] == "paused" and "gold accuracy" in payload["html"]
    assert Assignment.objects.filter(rater=member).count() == 3


# --- without JavaScript ----------------------------------------------------------------------------


def test_it_works_as_a_plain_form_without_javascript(client_for, member, make_project, add_items):
    project = make_project(Kind.RANKING, ranking_k=3)
    add_items(project, 2)
    client = client_for(member)
    client.get(label_url(project))
    assignment = Assignment.objects.get(rater=member)
    form = {"rank_0": "2", "rank_1": "3", "rank_2": "1", "rationale": "", "duration_ms": "3000"}
    response = client.post(f"{label_url(project)}{assignment.id}/submit/", form)
    assert response.status_code == 302 and response["Location"] == label_url(project)
    assert Judgment.objects.get().value == {"ranking": [[2], [0], [1]]}
    # An incomplete form comes back with the field named, and stores nothing.
    client.get(label_url(project))
    second = Assignment.objects.get(rater=member, status="active")
    response = client.post(f"{label_url(project)}{second.id}/submit/", {"rank_0": "1"}, follow=True)
    assert "rank_1: choose an answer" in response.content.decode()
    assert Judgment.objects.count() == 1


def test_it_takes_a_binary_form_post_button(client_for, member, project, add_items):
    add_items(project, 1)
    client = client_for(member)
    html = client.get(label_url(project)).content.decode()
    assignment = Assignment.objects.get(rater=member)
    # The "B" button posts the position shown on the right.
    value = re.search(r'name="winner" value="(\d)"\s+data-choice data-key="b"', html).group(1)
    assert int(value) == assignment.display_order[1]
    client.post(f"{label_url(project)}{assignment.id}/submit/", {"winner": value})
    assert Judgment.objects.get().value == {"winner": assignment.display_order[1]}


# --- what is shown ---------------------------------------------------------------------------------


def test_it_shows_a_chat_prompt_as_a_conversation(client_for, member, project):
    item = Item.objects.create(
        project=project,
        external_id="chat-1",
        prompt=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi **there**"}, {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Name a prime."}],
    )
    Candidate.objects.bulk_create([Candidate(item=item, position=p, text=t) for p, t in enumerate(["2", "9"])])
    html = client_for(member).get(label_url(project)).content.decode()
    assert html.count('class="msg role-user"') == 2 and 'class="msg role-system"' in html and 'class="msg role-assistant"' in html
    assert '<span class="role">Assistant</span>' in html
    assert "Hi <strong>there</strong>" in html


def test_it_renders_untrusted_candidates_inert_and_instructions_as_markdown(client_for, member, make_project):
    project = make_project(Kind.BINARY, instructions="Prefer **honest** answers.\n\n<script>alert(1)</script>")
    item = Item.objects.create(project=project, external_id="xss", prompt="<img src=x onerror=alert(1)>")
    texts = ["<script>alert(1)</script> [x](javascript:alert(1))", '<a href="javascript:alert(1)">y</a><svg onload=alert(1)>\n\n```python\nprint("hi")\n```']
    Candidate.objects.bulk_create([Candidate(item=item, position=p, text=t) for p, t in enumerate(texts)])
    html = client_for(member).get(label_url(project)).content.decode()
    assert "Prefer <strong>honest</strong> answers." in html
    # The page's own form, stylesheet and static script are expected; nothing else may be active.
    assert executable_parts(html, allow_tags=frozenset({"form", "link", "meta"}), allow_script_src=("/static/js/",)) == []
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown as text, for the rater to see
    assert '<span class="nb">print</span>' in html
