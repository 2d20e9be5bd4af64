"""The fast form of bench/probe_hostile.py (issue 18): every route of the URLconf, each write
method, as a manager, an outsider and a rater (whose own assignment the labelling routes name), gets every
hostile class (bench/hostile_cases.py, reduced): no answer may be a server error, and no hostile
value may be stored with a 2xx/3xx. The routes come from the URLconf itself, so a new write
route is probed the day it lands."""
from __future__ import annotations

import logging

import pytest

from bench import hostile_cases
from bench.hostile_cases import Case, Writes

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return hostile_cases.world()


@pytest.fixture
def quiet():
    """Every refused request would log a warning, and a 500 its traceback."""
    logging.disable(logging.CRITICAL)
    yield
    logging.disable(logging.NOTSET)


def test_it_finds_no_server_error_and_no_wrong_acceptance_on_any_write_route(world, quiet):
    users, ids = world
    roles = ("manager", "outsider", "rater")  # the rater: the labelling routes name their own assignment
    probe = hostile_cases.Probe(users=users, ids=ids, cases=hostile_cases.cases(fast=True), roles=roles)
    probe.run()
    assert probe.failures == 0, probe.table() + "\n" + "\n".join(sorted(probe.findings))
    # It reached the routes that store what they are sent, as the role that may write there, with
    # every class: a route that refused every body for another reason would prove nothing.
    for template in ("api/projects/<slug:slug>/", "api/assignments/<id:assignment_id>/submit/", "api/training/runs/",
                     "api/training/models/<id:pk>/evaluations/", "api/training/models/<id:pk>/generation-batches/",
                     "api/training/projects/<slug:slug>/judge-jobs/", "projects/<slug:slug>/settings/",
                     "projects/<slug:slug>/my-work/<id:judgment_id>/", "projects/<slug:slug>/adjudication/<id:item_id>/",
                     "training/projects/<slug:slug>/new/", "projects/<slug:slug>/label/<id:assignment_id>/demonstration/"):
        assert template in probe.probed, template
    assert all(t.requests for t in probe.totals.values()), probe.table()


def test_it_probes_every_route_of_the_urlconf():
    """Nothing but the admin, static files and the named exceptions is left out."""
    from django.urls import get_resolver

    templates = hostile_cases.routes()
    assert "api/training/runs/" in templates and "projects/<slug:slug>/settings/" in templates
    assert len(templates) >= 90
    assert set(hostile_cases.NOT_PROBED) == {"health/"}
    assert get_resolver().resolve("/health/")  # the exception is still a route: its reason still holds


def test_it_counts_a_stored_hostile_value_as_a_wrong_acceptance(world, quiet):
    """The judge itself: the same body stored through the ORM is seen in the written rows."""
    from django.db import connection, transaction

    from annotation.models import Project

    writes = Writes()
    with transaction.atomic(), connection.execute_wrapper(writes):
        Project.objects.filter(slug="demo").update(instructions="x" * 200_000, gold_rate=True)
        transaction.set_rollback(True)
    assert hostile_cases.verdict(Case("huge text", "instructions", "x" * 100_000, ""), 200, writes) == "wrong"
    assert hostile_cases.verdict(Case("bool for number", "gold_rate", True, ""), 302, writes) == "wrong"
    assert hostile_cases.verdict(Case("bool for number", "gold_rate", True, ""), 400, writes) == "ok"
    assert hostile_cases.verdict(Case("past bound", "seed", 2**63, ""), 200, writes) == "ok"


def test_it_refuses_the_hostile_project_settings_the_probe_found(world, quiet):
    """A boolean for gold_rate (DRF's FloatField took it as 1.0) and 100 kB of instructions (no
    cap) were stored with a 200 on the API and a redirect from the settings form."""
    from annotation.models import Project

    users, _ = world
    client = hostile_cases.clients({"manager": users["manager"]})["manager"]
    response = client.patch("/api/projects/demo/", {"gold_rate": True}, content_type="application/json")
    assert response.status_code == 400 and "gold_rate" in response.json()
    response = client.patch("/api/projects/demo/", {"instructions": "x" * 100_001}, content_type="application/json")
    assert response.status_code == 400 and "100,000 characters" in response.json()["instructions"][0]
    response = client.patch("/api/projects/demo/", {"instructions": "x" * 100_000}, content_type="application/json")
    assert response.status_code == 200
    assert Project.objects.get(slug="demo").gold_rate != 1.0
    response = client.patch("/api/projects/demo/", {"likert_labels": ["x" * 201]}, content_type="application/json")
    assert response.status_code == 400 and "200 characters" in response.json()["likert_labels"][0]
    assert Project.objects.get(slug="demo").likert_labels != ["x" * 201]


def test_it_shows_my_work_for_a_page_number_past_64_bits(world):
    users, _ = world
    client = hostile_cases.clients({"rater": users["rater"]})["rater"]
    response = client.get("/projects/demo/my-work/?page=99999999999999999999")
    assert response.status_code == 200
