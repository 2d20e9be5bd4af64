"""The project form's server side: kind cards, the chosen kind's settings marked, the preview
drawn through the labelling template, and people to add offered from a list.
(The browser side: tests/e2e/test_project_setup.py.)"""
from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group

from annotation.kinds import Kind
from annotation.projects import MANAGERS_GROUP

pytestmark = pytest.mark.django_db


@pytest.fixture
def creator(owner):
    owner.groups.add(Group.objects.get_or_create(name=MANAGERS_GROUP)[0])
    return owner


def test_it_starts_the_new_project_form_from_the_kind(client_for, creator):
    html = client_for(creator).get("/projects/new/").content.decode()
    assert html.index('id="group-kind"') < html.index('id="group-project"')
    assert re.search(r'<input type="radio" name="kind" value="binary" checked>', html)
    assert 'class="group kind-settings active" data-kind-settings="binary"' in html
    assert 'class="group kind-settings" data-kind-settings="likert"' in html
    # The preview is there on first paint: two responses and the binary answer buttons.
    preview = html[html.index('id="kind-preview"'):]
    assert preview.count('class="candidate card"') == 2 and "A is better" in preview


def test_it_keeps_the_posted_kind_chosen_when_the_form_comes_back_with_errors(client_for, creator):
    response = client_for(creator).post("/projects/new/", {"name": "Scale", "kind": "likert", "likert_points": "5", "likert_labels": "a\nb"})
    html = response.content.decode()
    assert response.status_code == 200
    assert 'class="group kind-settings active" data-kind-settings="likert"' in html
    assert "give one label per point (5) or none" in html


@pytest.mark.parametrize(
    "query, expect",
    [
        ({"kind": "likert", "likert_points": "5"}, ['data-key="5"', "B much better"]),
        ({"kind": "ranking", "ranking_k": "4"}, ["Response D", "Best first"]),
        ({"kind": "rating", "rating_min": "1", "rating_max": "3", "rating_labels": "bad\nok\ngood"}, ["Score for response A", "good"]),
        ({"kind": "binary", "allow_tie": "on"}, ["Tie"]),
    ],
)
def test_it_previews_what_raters_will_see_with_the_settings(client_for, member, query, expect):
    html = client_for(member).get("/projects/new/preview/", query).content.decode()
    assert f'data-preview-kind="{query["kind"]}"' in html and 'class="label-item kind-' in html
    for text in expect:
        assert text in html, text


def test_it_says_why_there_is_no_preview_for_settings_that_cannot_work(client_for, member):
    html = client_for(member).get("/projects/new/preview/", {"kind": "rating", "rating_min": "5", "rating_max": "1"}).content.decode()
    assert "rating_max: must be greater than the minimum rating" in html and "label-item" not in html
    html = client_for(member).get("/projects/new/preview/", {"kind": "likert", "likert_points": "many"}).content.decode()
    assert "likert_points: Enter a whole number." in html


def test_it_previews_a_projects_saved_settings_on_its_settings_page(client_for, owner, make_project):
    project = make_project(Kind.RANKING, slug="rank-three", ranking_k=3)
    html = client_for(owner).get(f"/projects/{project.slug}/settings/").content.decode()
    assert 'class="group kind-settings active" data-kind-settings="ranking"' in html
    assert html[html.index('id="kind-preview"'):].count('class="candidate card"') == 3


def test_it_offers_people_to_add_from_a_list(client_for, creator, make_user, make_project):
    make_user("zoe")
    html = client_for(creator).get("/projects/new/").content.decode()
    assert 'data-member-picker' in html and 'data-username="zoe"' in html
    project = make_project(Kind.BINARY, slug="demo")
    html = client_for(creator).get(f"/projects/{project.slug}/members/").content.decode()
    assert 'list="user-choices"' in html
    offered = html[html.index('<datalist id="user-choices">'):html.index("</datalist>")]
    assert '<option value="zoe">' in offered
    assert '<option value="member">' not in offered  # already on the project
