"""The rater's hot path (next, submit) runs hand-written SQL and builds its responses without
DRF serializers, for speed (annotation.sql, bench/profile_rater.py). These tests pin what that
must not change: the rows come back exactly as the ORM gives them, token auth behaves like
DRF's, the responses match the schema the API publishes, the web page and the API accept the
same limits, and each call stays at a fixed number of statements."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation import sql
from annotation.api.serializers_rater import JudgmentSerializer, LeaseSerializer
from annotation.kinds import Kind
from annotation.models import Assignment, Judgment, Membership, Project
from annotation.submission import MAX_DURATION_MS, MAX_FLAGS


def next_url(project):
    return reverse("api-rater-next", kwargs={"slug": project.slug})


def submit_url(assignment_id):
    return reverse("api-rater-submit", kwargs={"assignment_id": assignment_id})


def _fields(obj, model):
    return {f.attname: getattr(obj, f.attname) for f in model._meta.concrete_fields}


def _raw(model, pk):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {sql.columns(model, 't')} FROM {model._meta.db_table} t WHERE t.id = %s", [pk])
        obj, end = sql.instance(model, cursor.fetchone())
    return obj, end


# --- annotation.sql ----------------------------------------------------------------------------

def test_it_reads_rows_exactly_as_the_orm_does(make_project, member):
    project = make_project(Kind.RATING, rating_labels=["bad", "ok", "good", "great", "superb"], instructions="**Be** fair")
    membership = Membership.objects.get(project=project, user=member)
    Membership.objects.filter(id=membership.id).update(paused=True, paused_reason="gold 40%", gold_counted_from=timezone.now())
    for model, pk in ((Project, project.id), (Membership, membership.id), (get_user_model(), member.id)):
        raw, end = _raw(model, pk)
        assert end == len(model._meta.concrete_fields)
        # JSON lists, booleans and aware datetimes: SQLite returns text and integers for them.
        assert _fields(raw, model) == _fields(model.objects.get(id=pk), model), model.__name__
    raw, _ = _raw(Project, project.id)
    assert raw.rating_labels[2] == "good" and raw._state.adding is False


def test_it_inserts_like_create_with_defaults_and_timestamps(project, member, add_items):
    item = add_items(project, 1)[0]
    before = timezone.now()
    inserted = sql.insert(Judgment, {"project": project, "item": item, "rater": member, "kind": project.kind, "value": {"winner": 1}, "flags": ["x"]})
    stored = Judgment.objects.get(id=inserted.id)
    assert _fields(stored, Judgment) == _fields(inserted, Judgment)
    assert stored.value == {"winner": 1} and stored.source == Judgment.Source.HUMAN and stored.created_at >= before


# --- token authentication ------------------------------------------------------------------------

def test_it_authenticates_tokens_like_drf(project, member, add_items):
    add_items(project, 1)
    token = Token.objects.create(user=member)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.post(next_url(project)).status_code == 200

    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    bad = client.post(next_url(project))
    assert bad.status_code == 401 and bad.json()["detail"] == "Invalid token."
    assert bad.headers["WWW-Authenticate"] == "Token"

    get_user_model().objects.filter(id=member.id).update(is_active=False)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    inactive = client.post(next_url(project))
    assert inactive.status_code == 401 and inactive.json()["detail"] == "User inactive or deleted."


# --- responses match the published schema ----------------------------------------------------------

def _schema_keys(serializer) -> dict:
    out = {}
    for name, field in serializer.fields.items():
        child = getattr(field, "child", field)
        out[name] = _schema_keys(child) if hasattr(child, "fields") else None
    return out


def _payload_keys(payload) -> dict:
    out = {}
    for name, value in payload.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            value = value[0]
        out[name] = _payload_keys(value) if isinstance(value, dict) and name != "settings" else None
    return out


def test_it_answers_next_and_submit_in_the_shapes_the_schema_publishes(api_for, member, project, add_items):
    add_items(project, 1)
    api = api_for(member)
    lease = api.post(next_url(project)).json()
    assert _payload_keys(lease) == _schema_keys(LeaseSerializer())
    judgment = api.post(submit_url(lease["assignment"]), {"value": {"winner": 0}, "client_key": "k"}, format="json").json()
    assert set(judgment) == set(JudgmentSerializer().fields)
    stored = Judgment.objects.get()
    assert judgment["created_at"] == stored.created_at.isoformat().replace("+00:00", "Z")
    assert judgment["assignment"] == lease["assignment"] and judgment["display_order"] == stored.display_order


# --- one set of limits for the API and the labelling page ----------------------------------------

@pytest.mark.parametrize(
    "extra, field",
    [
        ({"duration_ms": MAX_DURATION_MS + 1}, "duration_ms"),
        ({"duration_ms": "soon"}, "duration_ms"),
        ({"rationale": "x" * 10_001}, "rationale"),
        ({"flags": ["t"] * (MAX_FLAGS + 1)}, "flags"),
        ({"client_key": "k" * 65}, "client_key"),
    ],
)
def test_the_api_and_the_page_refuse_the_same_extras(api_for, client_for, member, project, add_items, extra, field):
    add_items(project, 2)
    api = api_for(member)
    lease = api.post(next_url(project)).json()
    refused = api.post(submit_url(lease["assignment"]), {"value": {"winner": 0}, **extra}, format="json")
    assert refused.status_code == 400 and field in refused.json()

    page = client_for(member)
    url = reverse("annotation:label-submit", kwargs={"slug": project.slug, "assignment_id": lease["assignment"]})
    response = page.post(url, {"value": {"winner": 0}, **extra}, content_type="application/json")
    assert response.status_code == 400 and response.json()["field"] == field
    assert not Judgment.objects.exists()
    assert Assignment.objects.get(id=lease["assignment"]).status == Assignment.Status.ACTIVE


def test_a_day_long_duration_is_accepted_by_both(api_for, member, project, add_items):
    add_items(project, 1)
    api = api_for(member)
    lease = api.post(next_url(project)).json()
    ok = api.post(submit_url(lease["assignment"]), {"value": {"winner": 0}, "duration_ms": MAX_DURATION_MS}, format="json")
    assert ok.status_code == 201 and Judgment.objects.get().duration_ms == MAX_DURATION_MS


# --- statement counts --------------------------------------------------------------------------

def test_next_and_submit_run_a_fixed_number_of_statements(api_for, member, project, add_items, django_assert_num_queries):
    add_items(project, 30)
    api = api_for(member)
    first = api.post(next_url(project)).json()  # the first request of a process also sweeps expired leases
    api.post(submit_url(first["assignment"]), {"value": {"winner": 1}}, format="json")
    postgres = connection.vendor == "postgresql"
    # next: token+user, membership+project, savepoint, then PostgreSQL one multi-statement
    # query (synchronous_commit, lock, open-lease lookup, claim + lease insert + candidates);
    # SQLite: open-lease lookup, claim, candidates, insert; release.
    with django_assert_num_queries(5 if postgres else 8):
        lease = api.post(next_url(project)).json()
    # submit: token+user, assignment+project+membership, then PostgreSQL one statement in a
    # savepoint (close lease, insert, count); SQLite the three writes in a savepoint.
    with django_assert_num_queries(5 if postgres else 7):
        assert api.post(submit_url(lease["assignment"]), {"value": {"winner": 1}}, format="json").status_code == 201


def test_a_body_that_is_not_an_object_is_refused_by_name(api_for, member, project, add_items):
    add_items(project, 1)
    api = api_for(member)
    lease = api.post(next_url(project)).json()
    refused = api.post(submit_url(lease["assignment"]), [{"winner": 0}], format="json")
    assert refused.status_code == 400 and "JSON object" in refused.json()["body"][0]
    assert not Judgment.objects.exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
def test_postgres_prepares_the_hot_statements_once_they_repeat(api_for, member, project, add_items):
    add_items(project, 20)
    api = api_for(member)
    for _ in range(8):  # past psycopg's prepare threshold (settings: DB_PREPARE_THRESHOLD)
        lease = api.post(next_url(project)).json()
        assert api.post(submit_url(lease["assignment"]), {"value": {"winner": 1}}, format="json").status_code == 201
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE NOT from_sql")
        prepared = [row[0] for row in cursor.fetchall()]
    # token lookup, membership lookup, assignment lookup, the submit's one statement
    assert any("authtoken_token" in s for s in prepared), prepared
    assert any("annotation_membership" in s and "annotation_project" in s for s in prepared), prepared
    assert any(s.startswith("WITH closed AS") for s in prepared), prepared
    # ... and the answers are still right once prepared: 8 judgments, one per item
    assert Judgment.objects.filter(rater=member).count() == 8
    assert Judgment.objects.filter(rater=member).values("item").distinct().count() == 8
