"""Role-aware pages: nobody is offered an action their role forbids, and a forbidden page says
why inside the normal layout with a way back; client errors are logged as one line."""
from __future__ import annotations

import logging

import pytest

from annotation.kinds import Kind
from config.log_filters import OneLineClientErrors

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(make_project):
    return make_project(Kind.BINARY, slug="demo-binary", name="Demo binary")


def page(client, url):
    response = client.get(url)
    return response, response.content.decode()


def test_it_offers_a_researcher_statistics_but_no_labelling_or_management(client_for, researcher, demo):
    response, html = page(client_for(researcher), "/projects/demo-binary/")
    assert response.status_code == 200
    assert "Statistics" in html and "/projects/demo-binary/quality/" in html
    for forbidden in ("Start labelling", "/label/", "Import items", "/settings/", "/members/", "/training/projects/"):
        assert forbidden not in html, forbidden


def test_it_offers_a_rater_labelling_only(client_for, member, demo):
    _, html = page(client_for(member), "/projects/demo-binary/")
    assert 'id="start-labelling"' in html and "/projects/demo-binary/label/" in html
    for forbidden in ("Statistics", "/quality/", "/datasets/", "Import items", "/settings/", "/members/"):
        assert forbidden not in html, forbidden
    _, listing = page(client_for(member), "/")
    assert "New project" not in listing
    _, training = page(client_for(member), "/training/")
    assert "Model registry" not in training and "Start a run on" not in training


def test_it_offers_a_manager_everything(client_for, owner, demo):
    _, html = page(client_for(owner), "/projects/demo-binary/")
    for offered in ("Start labelling", "Statistics", "Import items", "/settings/", "/members/", "/training/projects/demo-binary/"):
        assert offered in html, offered


@pytest.mark.parametrize(
    "who, url, reason",
    [
        ("researcher", "/projects/demo-binary/label/", "Labelling needs the rater or manager role on Demo binary."),
        ("researcher", "/projects/demo-binary/import/", "Importing items needs the manager role on Demo binary."),
        ("researcher", "/projects/demo-binary/settings/", "Changing the settings needs the manager role on Demo binary."),
        ("researcher", "/projects/demo-binary/members/", "Managing members needs the manager role on Demo binary."),
        ("researcher", "/training/projects/demo-binary/new/", "Starting a training run needs the manager role on Demo binary."),
        ("member", "/projects/demo-binary/quality/", "The quality page needs the researcher or manager role on Demo binary."),
        ("member", "/projects/demo-binary/datasets/", "The datasets page needs the researcher or manager role on Demo binary."),
    ],
)
def test_it_explains_a_forbidden_page_inside_the_layout_with_a_way_back(client_for, request, demo, who, url, reason):
    user = request.getfixturevalue(who)
    response, html = page(client_for(user), url)
    assert response.status_code == 403
    assert reason in html
    assert 'class="topbar"' in html and ">Projects</a>" in html  # the normal layout, logged in
    assert 'href="/projects/demo-binary/" id="error-back"' in html and "Back to Demo binary" in html


def test_it_explains_why_a_rater_may_not_create_a_project(client_for, member):
    response, html = page(client_for(member), "/projects/new/")
    assert response.status_code == 403
    assert "Creating a project needs membership of the &#x27;managers&#x27; group" in html
    assert 'href="/" id="error-back"' in html


def test_it_tells_an_outsider_nothing_about_the_project(client_for, outsider, demo):
    response, html = page(client_for(outsider), "/projects/demo-binary/label/")
    assert response.status_code == 404
    assert "Demo binary" not in html and 'class="topbar"' in html and 'id="error-back"' in html


def test_it_logs_a_forbidden_request_as_one_line_with_the_reason(client_for, researcher, demo, caplog):
    with caplog.at_level(logging.WARNING, logger="django.request"):
        assert client_for(researcher).get("/projects/demo-binary/label/").status_code == 403
    [record] = [r for r in caplog.records if r.name == "django.request"]
    assert record.exc_info is None and record.exc_text is None
    line = logging.Formatter("%(levelname)s %(name)s: %(message)s").format(record)
    assert line == "WARNING django.request: Forbidden (Permission denied): /projects/demo-binary/label/ (Labelling needs the rater or manager role on Demo binary.)"


def test_it_keeps_the_traceback_of_a_server_error_and_drops_that_of_a_bad_request():
    def record(status):
        try:
            raise ValueError("bad\nthing")
        except ValueError:
            import sys

            rec = logging.LogRecord("django.security.X", logging.ERROR, __file__, 1, "Bad: %s", ("/x",), sys.exc_info())
        rec.status_code = status
        OneLineClientErrors().filter(rec)
        return rec

    bad = record(400)
    assert bad.exc_info is None and bad.getMessage() == "Bad: /x (bad thing)"
    assert "Traceback" not in logging.Formatter().format(bad)
    assert record(500).exc_info is not None


def test_it_shows_a_bad_request_inside_the_layout(client_for, member):
    response = client_for(member).get("/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    html = response.content.decode()
    assert "This request could not be handled" in html and "evil.example" in html


def test_it_has_a_favicon_on_every_page(client_for, member, demo):
    _, html = page(client_for(member), "/")
    assert '<link rel="icon" href="/static/favicon.svg"' in html
    icon = client_for(None).get("/static/favicon.svg")
    assert icon.status_code == 200 and b"<svg" in b"".join(icon.streaming_content if icon.streaming else [icon.content])
    legacy = client_for(None).get("/favicon.ico")
    assert legacy.status_code == 301 and legacy["Location"] == "/static/favicon.svg"



def test_it_explains_an_expired_form_inside_the_layout(member, demo):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    response = client.post("/projects/demo-binary/label/1/skip/", {})
    assert response.status_code == 403
    html = response.content.decode()
    assert "This form had expired or came from another site, so nothing was saved." in html
    assert 'class="topbar"' in html and 'id="error-back"' in html
