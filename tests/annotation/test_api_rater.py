"""The rater API: next, submit, skip, progress, judgments; with the owner (manager), a member
(rater), a researcher and an outsider, over token and session auth."""
from __future__ import annotations

import pytest
from django.urls import reverse

from annotation.kinds import Kind
from annotation.models import Assignment, Item, Judgment, Membership


def next_url(project):
    return reverse("api-rater-next", kwargs={"slug": project.slug})


def submit_url(assignment_id):
    return reverse("api-rater-submit", kwargs={"assignment_id": assignment_id})


def skip_url(assignment_id):
    return reverse("api-rater-skip", kwargs={"assignment_id": assignment_id})


@pytest.fixture
def gold_project(project, add_items):
    project.gold_rate = 0.5
    project.save()
    add_items(project, 3)
    add_items(project, 3, gold={"winner": 1}, prefix="h")
    return project


def test_it_leases_an_item_showing_only_what_a_rater_may_see(api_for, member, gold_project, make_user):
    other = make_user()
    Membership.objects.create(project=gold_project, user=other, role="rater")
    seen = []
    api = api_for(member)
    while True:
        r = api.post(next_url(gold_project))
        if r.status_code == 204:
            break
        lease = r.json()
        seen.append(lease)
        body = str(lease)
        for secret in ("gold", "winner", "model-0", "model-1", "metadata", "external_id", "judgment"):
            assert secret not in body, f"{secret!r} leaked to the rater: {body}"
        assert set(lease) == {"assignment", "expires_at", "item", "candidates", "project"}
        assert set(lease["item"]) == {"id", "prompt", "is_chat"}
        assert lease["project"]["kind"] == "binary"
        assert lease["project"]["settings"] == {"allow_tie": True, "allow_both_bad": True}
        stored = Assignment.objects.get(id=lease["assignment"])
        assert [c["position"] for c in lease["candidates"]] == stored.display_order
        assert [c["label"] for c in lease["candidates"]] == ["A", "B"]
        assert lease["candidates"][0]["text"].startswith(f"Answer {stored.display_order[0]} to")
        r = api.post(submit_url(lease["assignment"]), {"value": {"winner": 1}, "client_key": f"k{lease['assignment']}"}, format="json")
        assert r.status_code == 201, r.content
    # Every regular item once; gold items mixed in but never told apart; then nothing left.
    items = [lease["item"]["id"] for lease in seen]
    assert len(items) == len(set(items)) >= 3
    assert set(Item.objects.filter(project=gold_project, is_gold=False).values_list("id", flat=True)) <= set(items)


def test_it_returns_the_same_lease_until_it_is_answered(api_for, member, project, add_items):
    add_items(project, 2, chat=True)
    api = api_for(member)
    first = api.post(next_url(project)).json()
    assert first["item"]["is_chat"] is True
    assert first["item"]["prompt"][0]["role"] == "user"
    assert api.post(next_url(project)).json()["assignment"] == first["assignment"]


def test_it_lets_raters_and_managers_label_but_not_researchers_or_outsiders(api_for, owner, member, researcher, outsider, project, add_items):
    add_items(project, 5)
    for user in (owner, member):
        response = api_for(user).post(next_url(project))
        assert response.status_code == 200
        lease = response.json()
        assert Assignment.objects.get(id=lease["assignment"]).rater == user
        assert len(lease["candidates"]) == 2 and lease["project"]["slug"] == project.slug
    # Researchers judge the raters' data; their own answers would mix into it (as on the web page).
    refused = api_for(researcher).post(next_url(project))
    assert refused.status_code == 403 and "needs the rater or manager role" in refused.json()["detail"]
    assert not Assignment.objects.filter(rater=researcher).exists()
    assert api_for(outsider).post(next_url(project)).status_code == 404
    assert api_for(None).post(next_url(project)).status_code in (401, 403)
    assert api_for(member).post(reverse("api-rater-next", kwargs={"slug": "nope"})).status_code == 404
    assert not Assignment.objects.filter(rater=outsider).exists()


def test_it_refuses_a_paused_rater_with_the_reason(api_for, member, project, add_items):
    add_items(project, 2)
    Membership.objects.filter(project=project, user=member).update(paused=True, paused_reason="gold accuracy 40% on 10 answers")
    r = api_for(member).post(next_url(project))
    assert r.status_code == 403
    assert r.json()["code"] == "paused"
    assert "gold accuracy 40%" in r.json()["detail"]


def test_it_stores_a_submit_once_and_answers_a_repeat_with_the_same_judgment(api_for, member, project, add_items):
    add_items(project, 2)
    api = api_for(member)
    lease = api.post(next_url(project)).json()
    payload = {"value": {"winner": 0}, "duration_ms": 5300, "rationale": "A cites its source.", "flags": ["factual"], "client_key": "abc-1"}
    first = api.post(submit_url(lease["assignment"]), payload, format="json")
    again = api.post(submit_url(lease["assignment"]), payload, format="json")
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    judgment = Judgment.objects.get()
    assert (judgment.value, judgment.duration_ms, judgment.rationale, judgment.flags) == ({"winner": 0}, 5300, "A cites its source.", ["factual"])
    assert judgment.display_order == Assignment.objects.get(id=lease["assignment"]).display_order
    assert first.json()["value"] == {"winner": 0}


def test_it_names_the_field_of_a_bad_answer_and_stores_nothing(api_for, member, make_project, add_items):
    project = make_project(Kind.LIKERT, likert_points=7)
    add_items(project, 1)
    api = api_for(member)
    lease = api.post(next_url(project)).json()
    assert lease["project"]["settings"]["likert_points"] == 7
    bad = api.post(submit_url(lease["assignment"]), {"value": {"winner": 0, "strength": 9}}, format="json")
    assert bad.status_code == 400
    assert "strength" in bad.json()["value"]
    assert "between 1 and 3" in bad.json()["value"]["strength"][0]
    missing = api.post(submit_url(lease["assignment"]), {"duration_ms": -4}, format="json")
    assert missing.status_code == 400 and {"value", "duration_ms"} <= set(missing.json())
    assert not Judgment.objects.exists()
    ok = api.post(submit_url(lease["assignment"]), {"value": {"winner": 1, "strength": 3}}, format="json")
    assert ok.status_code == 201


def test_it_hides_one_raters_assignment_from_everybody_else(api_for, member, owner, outsider, researcher, project, add_items):
    add_items(project, 2)
    lease = api_for(member).post(next_url(project)).json()
    for user in (owner, outsider, researcher):
        assert api_for(user).post(submit_url(lease["assignment"]), {"value": {"winner": 0}}, format="json").status_code == 404
        assert api_for(user).post(skip_url(lease["assignment"])).status_code == 404
    assert Assignment.objects.get(id=lease["assignment"]).status == Assignment.Status.ACTIVE
    assert not Judgment.objects.exists()


def test_it_answers_409_when_the_lease_was_lost(api_for, member, project, add_items):
    add_items(project, 2)
    api = api_for(member)
    lease = api.post(next_url(project)).json()
    skipped = api.post(skip_url(lease["assignment"]))
    assert skipped.status_code == 200 and skipped.json()["status"] == "skipped"
    assert api.post(skip_url(lease["assignment"])).status_code == 409
    late = api.post(submit_url(lease["assignment"]), {"value": {"winner": 0}}, format="json")
    assert late.status_code == 409 and late.json()["code"] == "lease_lost"
    # The skipped item never comes back to the skipper.
    nxt = api.post(next_url(project)).json()
    assert nxt["item"]["id"] != lease["item"]["id"]


def test_it_reports_progress(api_for, member, outsider, project, add_items):
    project.overlap = 2
    project.save()
    add_items(project, 4)
    api = api_for(member)
    url = reverse("api-rater-progress", kwargs={"slug": project.slug})
    assert api.get(url).json() == {"done_today": 0, "done_total": 0, "remaining": 4}
    for _ in range(3):
        lease = api.post(next_url(project)).json()
        api.post(submit_url(lease["assignment"]), {"value": {"winner": 0}}, format="json")
    assert api.get(url).json() == {"done_today": 3, "done_total": 3, "remaining": 1}
    assert api_for(outsider).get(url).status_code == 404


def test_it_lists_a_raters_own_judgments_and_everyones_only_for_researchers(api_for, member, owner, researcher, outsider, project, add_items, make_user):
    add_items(project, 6)
    project.overlap = 2
    project.save()
    other = make_user()
    Membership.objects.create(project=project, user=other, role="rater")
    for user in (member, member, other):
        api = api_for(user)
        lease = api.post(next_url(project)).json()
        api.post(submit_url(lease["assignment"]), {"value": {"winner": 0}}, format="json")
    url = reverse("api-rater-judgments", kwargs={"slug": project.slug})

    mine = api_for(member).get(url).json()
    assert len(mine["results"]) == 2
    assert {r["item"] for r in mine["results"]} == set(Judgment.objects.filter(rater=member).values_list("item_id", flat=True))
    assert "gold_correct" not in mine["results"][0] and "rater" not in mine["results"][0]
    assert api_for(member).get(url, {"all": 1}).status_code == 403
    assert api_for(outsider).get(url).status_code == 404
    assert api_for(outsider).get(url, {"all": 1}).status_code == 404
    for boss in (researcher, owner):
        everyone = api_for(boss).get(url, {"all": 1}).json()["results"]
        assert sorted(r["rater"] for r in everyone) == sorted([member.id, member.id, other.id])
    assert api_for(owner).get(url).json()["results"] == []

    # Cursor pagination: page by page, nothing lost or repeated.
    page = api_for(researcher).get(url, {"all": 1, "page_size": 2}).json()
    ids = [r["id"] for r in page["results"]]
    page = api_for(researcher).get(page["next"]).json()
    ids += [r["id"] for r in page["results"]]
    assert sorted(ids) == sorted(Judgment.objects.values_list("id", flat=True)) and page["next"] is None


def test_it_works_with_a_browser_session_too(client_for, member, project, add_items):
    add_items(project, 1)
    browser = client_for(member)
    lease = browser.post(next_url(project)).json()
    r = browser.post(submit_url(lease["assignment"]), {"value": {"winner": 1}}, content_type="application/json")
    assert r.status_code == 201
    assert Item.objects.get(id=lease["item"]["id"]).judgment_count == 1


def test_it_documents_the_rater_api_in_the_schema(api_for, member):
    r = api_for(member).get("/api/schema/", HTTP_ACCEPT="application/json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for path in (
        "/api/projects/{slug}/next/",
        "/api/projects/{slug}/progress/",
        "/api/projects/{slug}/judgments/",
        "/api/assignments/{assignment_id}/submit/",
        "/api/assignments/{assignment_id}/skip/",
    ):
        assert path in paths, path
    submit = paths["/api/assignments/{assignment_id}/submit/"]["post"]
    assert {"200", "201", "400", "404", "409"} <= set(submit["responses"])
