"""Questions beside the primary judgment: the declaration (service, API, admin), the answers a
rater submits with the judgment (API and labelling page), and edits that version them."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from annotation import questions
from annotation.kinds import InvalidValue, Kind
from annotation.models import Judgment
from annotation.my_work import judgment_change
from annotation.projects import project_create, project_update

HELPSTEER = [
    {"key": "helpfulness", "label": "Helpfulness", "type": "scale", "per": "response", "min": 0, "max": 4, "required": True},
    {"key": "harm", "label": "Harm", "type": "labels", "per": "item", "choices": ["violence", "self_harm", "hate"]},
    {"key": "note", "label": "Anything else?", "type": "text", "max_chars": 50},
]


@pytest.fixture
def asking(make_project):
    return make_project(Kind.BINARY, questions=questions.validate_questions(HELPSTEER))


def _lease(api, project):
    r = api.post(reverse("api-rater-next", kwargs={"slug": project.slug}))
    assert r.status_code == 200, r.content
    return r.json()


def _submit(api, lease, **body):
    return api.post(reverse("api-rater-submit", kwargs={"assignment_id": lease["assignment"]}), {"value": {"winner": 0}, **body}, format="json")


def test_it_normalises_a_declaration_and_names_each_bad_field():
    clean = questions.validate_questions(HELPSTEER)
    assert clean[0]["scale_labels"] == [] and clean[1]["per"] == "item" and clean[2]["per"] == "item" and clean[2]["required"] is False
    bad = [
        {"key": "Helpful", "type": "scale"},
        {"key": "ok", "type": "scale", "min": 0, "max": 40},
        {"key": "ok2", "type": "labels", "choices": []},
        {"key": "ok3", "type": "text", "per": "response"},
        {"key": "prompt", "type": "text"},
        {"key": "ok", "type": "mood"},
    ]
    with pytest.raises(questions.QuestionsError) as caught:
        questions.validate_questions(bad)
    assert set(caught.value.errors) == {
        "questions[0].key", "questions[1].max", "questions[2].choices", "questions[3].per", "questions[4].key", "questions[5].type",
    }


def test_it_checks_answers_by_position_required_and_optional(asking):
    ok = questions.validate_answers(asking, {"helpfulness": [4, 1.0], "harm": ["hate", "violence"], "note": "  "}, 2)
    # Labels in declaration order, an empty optional text left out, 1.0 read as the score 1.
    assert ok == {"helpfulness": [4, 1], "harm": ["violence", "hate"]}
    cases = {
        "answers.helpfulness": {},
        "answers.helpfulness[1]": {"helpfulness": [4, None]},
        "answers.helpfulness[0]": {"helpfulness": [5, 1]},
        "answers.harm": {"helpfulness": [1, 1], "harm": ["rude"]},
        "answers.note": {"helpfulness": [1, 1], "note": "x" * 51},
        "answers.mood": {"helpfulness": [1, 1], "mood": 3},
    }
    for field, raw in cases.items():
        with pytest.raises(InvalidValue) as caught:
            questions.validate_answers(asking, raw, 2)
        assert caught.value.field == field, (raw, caught.value)
    with pytest.raises(InvalidValue):
        questions.validate_answers(asking, {"helpfulness": [True, 1]}, 2)


def test_it_keeps_a_project_without_questions_as_it_was(api_for, member, project, add_items):
    add_items(project, 1)
    api = api_for(member)
    lease = _lease(api, project)
    assert lease["project"]["questions"] == []
    r = _submit(api, lease)
    assert r.status_code == 201, r.content
    assert Judgment.objects.get().answers == {}
    r = api.post(reverse("api-rater-next", kwargs={"slug": project.slug}))
    assert r.status_code == 204


def test_it_stores_one_judgment_with_all_its_answers_through_the_api(api_for, member, asking, add_items):
    add_items(asking, 2)
    api = api_for(member)
    lease = _lease(api, asking)
    assert [q["key"] for q in lease["project"]["questions"]] == ["helpfulness", "harm", "note"]
    r = _submit(api, lease)
    assert r.status_code == 400 and r.json() == {"answers": {"helpfulness": ["this question is required"]}}, r.content
    r = _submit(api, lease, answers={"helpfulness": [3, 0], "harm": ["self_harm"], "note": "odd"})
    assert r.status_code == 201, r.content
    judgment = Judgment.objects.get()
    assert judgment.value == {"winner": 0}
    assert judgment.answers == {"helpfulness": [3, 0], "harm": ["self_harm"], "note": "odd"}
    assert r.json()["answers"] == judgment.answers


def test_it_takes_answers_from_the_labelling_form(client_for, member, asking, add_items):
    from annotation.models import Assignment

    add_items(asking, 1)
    web = client_for(member)
    web.get(reverse("annotation:label", kwargs={"slug": asking.slug}))
    assignment = Assignment.objects.get()
    url = reverse("annotation:label-submit", kwargs={"slug": asking.slug, "assignment_id": assignment.id})
    # A plain form names the winner by position, as the answers do.
    r = web.post(url, {"winner": "0", "answers": '{"helpfulness": [2, 3]}'}, HTTP_ACCEPT="application/json")
    assert r.status_code in (200, 201), r.content
    judgment = Judgment.objects.get()
    assert judgment.answers == {"helpfulness": [2, 3]}
    assert judgment.value == {"winner": 0}


def test_it_versions_answers_when_a_rater_changes_them(api_for, member, asking, add_items):
    add_items(asking, 1)
    api = api_for(member)
    lease = _lease(api, asking)
    assert _submit(api, lease, answers={"helpfulness": [3, 0]}).status_code == 201
    judgment = Judgment.objects.get()
    change = judgment_change(judgment=judgment, rater=member, value={"winner": 0}, answers={"helpfulness": [1, 4], "harm": []})
    assert change.changed
    judgment.refresh_from_db()
    assert judgment.version == 2 and judgment.answers == {"helpfulness": [1, 4], "harm": []}
    assert list(judgment.revisions.values_list("answers", flat=True)) == [{"helpfulness": [3, 0]}]
    # Keeping the answers (a form that shows only the judgment) is not a change.
    assert not judgment_change(judgment=judgment, rater=member, value={"winner": 0}).changed


def test_it_declares_questions_through_the_api_with_field_errors(api_for, staff, member, outsider):
    url = reverse("api-project-list")
    r = api_for(staff).post(url, {"name": "Asks", "kind": "binary", "questions": [{"key": "x", "type": "scale", "min": 3, "max": 1}]}, format="json")
    assert r.status_code == 400 and "questions[0].max" in str(r.json()["questions"]), r.content
    r = api_for(staff).post(url, {"name": "Asks", "kind": "binary", "questions": HELPSTEER, "raters": ["member"]}, format="json")
    assert r.status_code == 201, r.content
    slug = r.json()["slug"]
    assert [q["key"] for q in r.json()["questions"]] == ["helpfulness", "harm", "note"]
    detail = reverse("api-project-detail", kwargs={"slug": slug})
    assert api_for(outsider).get(detail).status_code == 404
    assert api_for(member).patch(detail, {"questions": []}, format="json").status_code in (403, 404)
    from annotation.models import Project

    assert len(Project.objects.get(slug=slug).questions) == 3  # a rater cannot change them


def test_it_refuses_to_change_what_stored_answers_mean(owner, member, add_items, api_for):
    project = project_create(name="Helpsteer", created_by=owner, questions=HELPSTEER, members={member: "rater"})
    add_items(project, 1)
    lease = _lease(api_for(member), project)
    assert _submit(api_for(member), lease, answers={"helpfulness": [3, 0]}).status_code == 201
    changed = [dict(q) for q in project.questions]
    changed[0]["max"] = 6
    with pytest.raises(ValidationError) as caught:
        project_update(project=project, fields={"questions": changed})
    assert "'helpfulness': max cannot change" in str(caught.value)
    with pytest.raises(ValidationError):
        project_update(project=project, fields={"questions": changed[1:]})
    # Rewording and adding are fine.
    reworded = [dict(q) for q in project.questions]
    reworded[0]["help"] = "Would this answer help the person?"
    reworded.append({"key": "verbosity", "type": "scale", "min": 0, "max": 4})
    project_update(project=project, fields={"questions": reworded})
    project.refresh_from_db()
    assert project.questions[0]["help"].startswith("Would") and project.questions[-1]["key"] == "verbosity"


def test_it_takes_the_same_declaration_in_the_admin(client_for, staff, owner):
    project = project_create(name="Admin asks", created_by=owner)
    web = client_for(staff)
    url = reverse("admin:annotation_project_change", args=[project.id])
    page = web.get(url)
    assert page.status_code == 200 and b"questions" in page.content
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data.update({
        "questions": '[{"key": "Bad key", "type": "scale"}]',
        "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0",
    })
    r = web.post(url, data)
    assert r.status_code == 200 and b"questions[0].key" in r.content
    data["questions"] = '[{"key": "helpfulness", "type": "scale", "min": 0, "max": 4}]'
    r = web.post(url, data)
    assert r.status_code == 302, r.content[:2000]
    project.refresh_from_db()
    assert project.questions[0]["per"] == "response" and project.questions[0]["required"] is False


def test_it_imports_a_gold_items_expected_answers_and_names_a_bad_one(asking):
    import io
    import json

    from annotation.importers import import_stream
    from annotation.importers.service import ImportFailed
    from annotation.models import Item

    good = {"id": "g1", "prompt": "Q?", "responses": [{"text": "a"}, {"text": "b"}],
            "gold": {"winner": 0, "answers": {"helpfulness": [4, 0]}}}
    batch = import_stream(project=asking, stream=io.BytesIO((json.dumps(good) + "\n").encode()), filename="gold.jsonl")
    assert batch.status == batch.Status.SUCCEEDED, batch.errors
    # Only some questions expected: a gold item need not cover the required ones.
    assert Item.objects.get(external_id="g1").gold == {"winner": 0, "answers": {"helpfulness": [4, 0]}}
    bad = dict(good, id="g2", gold={"winner": 0, "answers": {"helpfulness": [9, 0]}})
    with pytest.raises(ImportFailed):
        import_stream(project=asking, stream=io.BytesIO((json.dumps(bad) + "\n").encode()), filename="gold.jsonl")
    failed = asking.imports.order_by("-id").first()
    assert failed.errors[0]["line"] == 1 and failed.errors[0]["field"] == "gold.answers.helpfulness[0]", failed.errors
    assert not Item.objects.filter(external_id="g2").exists()
