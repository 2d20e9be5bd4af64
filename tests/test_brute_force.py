"""Guessing passwords: the login page, the admin's and the API token all lock a (username,
address) pair out after ARBITER_LOGIN_FAILURE_LIMIT failures, while the right password from
another address still works (README: Production). Writes over the API are throttled per user."""
from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
ATTACKER, USER = "203.0.113.7", "198.51.100.20"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_it_locks_out_twenty_wrong_passwords_on_the_login_page_but_not_the_user_elsewhere(owner):
    attacker = Client(REMOTE_ADDR=ATTACKER)
    statuses = [attacker.post("/accounts/login/", {"username": "owner", "password": f"guess-{i}"}).status_code for i in range(20)]
    assert statuses[0] == 200  # the form again, "didn't match"
    assert statuses[-1] == 429 and statuses.count(429) >= 10
    # Even the right password is refused to the locked pair, with a page that says why.
    locked = attacker.post("/accounts/login/", {"username": "owner", "password": PASSWORD})
    assert locked.status_code == 429 and "Too many failed logins" in locked.content.decode()
    assert "_auth_user_id" not in attacker.session
    # The real user, from their own address, logs in.
    user = Client(REMOTE_ADDR=USER)
    ok = user.post("/accounts/login/", {"username": "owner", "password": PASSWORD})
    assert ok.status_code == 302 and user.session["_auth_user_id"] == str(owner.pk)


def test_it_locks_out_the_api_token_endpoint(owner):
    attacker = APIClient(REMOTE_ADDR=ATTACKER)
    statuses = [attacker.post("/api/token/", {"username": "owner", "password": f"guess-{i}"}, format="json").status_code for i in range(20)]
    assert statuses[0] == 400 and statuses[-1] == 429
    locked = attacker.post("/api/token/", {"username": "owner", "password": PASSWORD}, format="json")
    assert locked.status_code == 429 and "Too many failed logins" in locked.json()["detail"] and "token" not in locked.json()
    assert int(locked["Retry-After"]) == 15 * 60
    ok = APIClient(REMOTE_ADDR=USER).post("/api/token/", {"username": "owner", "password": PASSWORD}, format="json")
    assert ok.status_code == 200 and ok.json()["token"]


def test_it_locks_out_the_admin_login(staff):
    attacker = Client(REMOTE_ADDR=ATTACKER)
    for i in range(20):
        last = attacker.post("/admin/login/", {"username": "staff", "password": f"guess-{i}", "next": "/admin/"})
    assert last.status_code == 429
    ok = Client(REMOTE_ADDR=USER).post("/admin/login/", {"username": "staff", "password": PASSWORD, "next": "/admin/"})
    assert ok.status_code == 302 and ok["Location"] == "/admin/"


def test_it_forgets_failures_after_a_successful_login(owner):
    c = Client(REMOTE_ADDR=ATTACKER)
    for round_ in range(3):
        for i in range(9):
            assert c.post("/accounts/login/", {"username": "owner", "password": f"typo-{round_}-{i}"}).status_code == 200
        assert c.post("/accounts/login/", {"username": "owner", "password": PASSWORD}).status_code == 302
        c.logout()


def test_it_throttles_api_writes_per_user_and_never_reads(settings, project, owner, member, api_for):
    settings.ARBITER_API_WRITE_RATE = (3, 60)
    rater = api_for(member)
    statuses = [rater.post("/api/projects/demo/next/", format="json").status_code for _ in range(4)]
    assert 429 not in statuses[:3] and statuses[3] == 429
    refused = rater.post("/api/projects/demo/next/", format="json")
    assert refused.status_code == 429 and 0 < int(refused["Retry-After"]) <= 60 and "throttled" in refused.json()["detail"].lower()
    assert rater.get("/api/projects/demo/progress/").status_code == 200
    # Another user has their own allowance.
    assert api_for(owner).post("/api/projects/demo/next/", format="json").status_code != 429
