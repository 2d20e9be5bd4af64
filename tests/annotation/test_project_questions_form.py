"""The project form declares the questions asked beside the judgment (issue 22): one `questions`
field holding the JSON declaration (the builder writes it; without JavaScript a manager types it),
checked by the service, its errors naming the question and field, and a preview that shows the
questions as raters meet them. (The builder in a real browser: tests/e2e/test_question_builder.py.)"""
from __future__ import annotations

import html as htmllib
import json

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from annotation.forms import QUESTION_PRESETS
from annotation.kinds import Kind
from annotation.models import Judgment, Project
from annotation.projects import MANAGERS_GROUP
from annotation.questions import validate_questions

pytestmark = pytest.mark.django_db

HELPFULNESS = {"key": "helpfulness", "label": "Helpfulness", "type": "scale", "per": "response", "required": True, "min": 0, "max": 4}
HARM = {"key": "harm", "label": "Harm", "type": "labels", "per": "item", "choices": ["violence", "self_harm"]}
NOTE = {"key": "note", "type": "text", "max_chars": 200, "help": "Anything odd?"}


@pytest.fixture
def creator(owner):
    owner.groups.add(Group.objects.get_or_create(name=MANAGERS_GROUP)[0])
    return owner


def _form(**overrides) -> dict:
    data = {
        "name": "Attributes",
        "slug": "",
        "instructions": "Rate each response.",
        "kind": "binary",
        "likert_points": "7",
        "ranking_k": "4",
        "rating_min": "1",
        "rating_max": "5",
        "rating_threshold": "4",
        "overlap": "3",
        "lease_seconds": "300",
        "gold_rate": "0",
        "gold_min_answers": "5",
        "raters": "",
        "researchers": "",
    }
    data.update(overrides)
    return data


def _textarea(page: str) -> str:
    """The `questions` field's text as the browser shows it."""
    start = page.index('name="questions"')
    body = page[page.index(">", start) + 1:page.index("</textarea>", start)]
    return htmllib.unescape(body.removeprefix("\n"))  # Django's widget starts with a newline; browsers drop it


def test_it_creates_a_project_with_its_questions_from_the_form(client_for, creator):
    declaration = [HELPFULNESS, HARM, NOTE]
    response = client_for(creator).post("/projects/new/", _form(questions=json.dumps(declaration)))
    assert response.status_code == 302
    project = Project.objects.get(name="Attributes")
    assert project.questions == validate_questions(declaration)
    assert [q["key"] for q in project.questions] == ["helpfulness", "harm", "note"]
    assert project.questions[2]["per"] == "item" and project.questions[0]["scale_labels"] == []


def test_it_creates_a_project_without_questions_as_before(client_for, creator):
    assert client_for(creator).post("/projects/new/", _form()).status_code == 302
    assert client_for(creator).post("/projects/new/", _form(name="Empty", questions="")).status_code == 302
    assert [p.questions for p in Project.objects.order_by("id")] == [[], []]


@pytest.mark.parametrize(
    "declaration, words",
    [
        ([HELPFULNESS, {**HELPFULNESS, "key": "correctness", "min": 4, "max": 2}], "Question 2 (correctness), max: must be greater than min"),
        ([{**HARM, "choices": []}], "Question 1 (harm), choices: must be a list of 1 to 20 labels"),
        ([{**HELPFULNESS, "key": "Bad Key"}], "Question 1 (Bad Key), key: must be 1 to 40 lowercase letters"),
        ([HELPFULNESS, HELPFULNESS], "Question 2 (helpfulness), key: &#x27;helpfulness&#x27; is used by another question"),
        ([{**NOTE, "per": "response"}], "Question 1 (note), per: a text question is asked once per item"),
        ({"key": "x"}, "questions: must be a list of questions"),
    ],
)
def test_it_names_the_question_and_field_of_a_bad_declaration_and_keeps_the_text(client_for, creator, declaration, words):
    typed = json.dumps(declaration, indent=1) + "\n"
    response = client_for(creator).post("/projects/new/", _form(questions=typed))
    page = response.content.decode()
    assert response.status_code == 200 and not Project.objects.exists()
    errors = page[page.index('id="question-errors"'):page.index("</ul>", page.index('id="question-errors"'))]
    assert words in errors
    assert _textarea(page).strip() == typed.strip()  # nothing the manager typed is lost
    assert 'id="group-questions" class="group questions has-error"' in page


def test_it_says_where_the_json_is_broken(client_for, creator):
    typed = '[{"key": "helpfulness", "type": "scale",}]'
    response = client_for(creator).post("/projects/new/", _form(questions=typed))
    assert response.status_code == 200 and not Project.objects.exists()
    assert "not valid JSON" in " ".join(response.context["form"].errors["questions"])
    assert _textarea(response.content.decode()) == typed


def test_it_shows_a_projects_questions_on_its_settings_page_and_keeps_them(client_for, owner, make_project):
    project = make_project(Kind.BINARY, slug="attrs", questions=validate_questions([HELPFULNESS, HARM]))
    page = client_for(owner).get("/projects/attrs/settings/").content.decode()
    assert json.loads(_textarea(page)) == project.questions
    assert '<details id="group-questions" class="group questions" open>' in page  # unfolded: it asks some
    assert 'id="questions-fixed"' not in page  # no judgments yet: anything may change

    # A post without the field (a client older than questions) leaves them as they are.
    data = _form(name="Renamed", slug="attrs")
    data.pop("raters"), data.pop("researchers")
    assert client_for(owner).post("/projects/attrs/settings/", data).status_code == 302
    project.refresh_from_db()
    assert (project.name, [q["key"] for q in project.questions]) == ("Renamed", ["helpfulness", "harm"])

    # The form's own field: the posted declaration replaces the saved one.
    assert client_for(owner).post("/projects/attrs/settings/", {**data, "questions": json.dumps([NOTE])}).status_code == 302
    project.refresh_from_db()
    assert [q["key"] for q in project.questions] == ["note"]


def test_it_explains_and_enforces_that_answered_questions_keep_their_shape(client_for, owner, member, make_project, add_items):
    project = make_project(Kind.BINARY, slug="answered", questions=validate_questions([HELPFULNESS]))
    item = add_items(project, 1)[0]
    Judgment.objects.create(project=project, item=item, rater=member, kind=project.kind, value={"winner": 0}, answers={"helpfulness": [3, 2]}, source=Judgment.Source.IMPORT)
    page = client_for(owner).get("/projects/answered/settings/").content.decode()
    assert 'id="questions-fixed"' in page and "scale (min and max) and choices of helpfulness are fixed" in page
    assert '<script id="answered-keys" type="application/json">["helpfulness"]</script>' in page

    data = _form(name="Answered", slug="answered")
    data.pop("raters"), data.pop("researchers")
    widened = json.dumps([{**HELPFULNESS, "max": 5}])
    response = client_for(owner).post("/projects/answered/settings/", {**data, "questions": widened})
    assert response.status_code == 200
    assert "&#x27;helpfulness&#x27;: max cannot change once judgments exist" in response.content.decode()
    assert json.loads(_textarea(response.content.decode())) == [{**HELPFULNESS, "max": 5}]

    reworded = json.dumps([{**HELPFULNESS, "label": "How helpful?", "help": "0 = not at all"}, NOTE])
    assert client_for(owner).post("/projects/answered/settings/", {**data, "questions": reworded}).status_code == 302
    project.refresh_from_db()
    assert [(q["key"], q["label"]) for q in project.questions] == [("helpfulness", "How helpful?"), ("note", "note")]


def test_it_lets_only_managers_reach_the_question_forms(client_for, creator, owner, member, researcher, outsider, make_project):
    project = make_project(Kind.BINARY, slug="guarded", questions=validate_questions([HELPFULNESS]))
    questions = json.dumps([NOTE])
    data = {**_form(name="Guarded", slug="guarded", questions=questions)}
    data.pop("raters"), data.pop("researchers")
    for user, status in ((member, 403), (researcher, 403), (outsider, 404)):
        assert client_for(user).get("/projects/guarded/settings/").status_code == status
        assert client_for(user).post("/projects/guarded/settings/", data).status_code == status
        assert client_for(user).post("/projects/new/", _form(name="Theirs", questions=questions)).status_code == 403
    project.refresh_from_db()
    assert [q["key"] for q in project.questions] == ["helpfulness"] and not Project.objects.filter(name="Theirs").exists()
    assert client_for(owner).get("/projects/guarded/settings/").status_code == 200
    assert client_for(creator).get("/projects/new/").status_code == 200
    assert Client().post("/projects/new/preview/", {"kind": "binary"}).status_code == 302  # to the login page


def test_it_previews_the_questions_under_each_response_and_once_for_the_item(client_for, member):
    questions = json.dumps([{**HELPFULNESS, "scale_labels": ["none", "a little", "some", "much", "fully"]}, HARM, NOTE])
    page = client_for(member).post("/projects/new/preview/", {"kind": "ranking", "ranking_k": "3", "questions": questions}).content.decode()
    assert page.count('class="candidate card"') == 3  # the kind's own preview is still drawn
    # The rater's own controls (_label_item.html): the scale under each response, the item's once, after them.
    for position, label in enumerate("ABC"):
        assert f'data-position="{position}" data-card-label="{label}"' in page
        assert page.count(f'name="q_helpfulness_{position}"') == 5
    assert "fully" in page and page.count('type="checkbox" name="q_harm"') == 2
    assert 'name="q_note"' in page and 'maxlength="200"' in page and "Anything odd?" in page
    assert page.index('name="q_note"') > page.index('name="q_helpfulness_2"')


def test_it_says_why_it_cannot_preview_the_questions_but_still_shows_the_kind(client_for, member):
    bad = json.dumps([{**HELPFULNESS, "max": 40}])
    page = client_for(member).post("/projects/new/preview/", {"kind": "binary", "questions": bad}).content.decode()
    assert "questions[0].max: a scale has at most 11 points" in page and "A is better" in page
    page = client_for(member).post("/projects/new/preview/", {"kind": "binary", "questions": "[{"}).content.decode()
    assert "questions: not valid JSON" in page and 'name="q_' not in page


def test_it_checks_the_preview_post_for_the_csrf_token(member):
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    assert client.post("/projects/new/preview/", {"kind": "binary"}).status_code == 403
    assert client.get("/projects/new/preview/", {"kind": "binary"}).status_code == 200


def test_it_offers_presets_that_are_whole_declarations(client_for, creator):
    assert validate_questions(QUESTION_PRESETS["helpsteer2"]["questions"]) == QUESTION_PRESETS["helpsteer2"]["questions"]
    assert [q["key"] for q in QUESTION_PRESETS["helpsteer2"]["questions"]] == ["helpfulness", "correctness", "coherence", "complexity", "verbosity"]
    assert all((q["min"], q["max"], q["per"], q["required"]) == (0, 4, "response", True) for q in QUESTION_PRESETS["helpsteer2"]["questions"])
    harm = validate_questions(QUESTION_PRESETS["harm"]["questions"])
    assert harm == QUESTION_PRESETS["harm"]["questions"] and harm[0]["type"] == "labels" and harm[0]["per"] == "item"
    page = client_for(creator).get("/projects/new/").content.decode()
    assert 'data-preset="helpsteer2">HelpSteer2 attributes</button>' in page and 'data-preset="harm">Harm categories</button>' in page
    assert '<script id="question-presets" type="application/json">' in page


def test_it_works_without_javascript_through_the_json_field(client_for, creator):
    page = client_for(creator).get("/projects/new/").content.decode()
    section = page[page.index('id="group-questions"'):page.index("</fieldset>", page.index('data-question-json'))]
    # Folded while it asks none; the builder is marked for script-enabled pages; the JSON box is open and labelled.
    assert '<details id="group-questions" class="group questions">' in page
    assert 'class="question-builder js-only"' in section and "data-question-json open" in section
    assert '<label for="id_questions">Questions as JSON</label>' in section
    assert _textarea(page) == "[]"
