"""Shared fixtures. Every endpoint is tested with three users (DESIGN.md habits):
the owner (a manager of the project), a member (a rater on it) and an outsider who must see
nothing; `researcher` is the fourth role where it matters."""
from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.kinds import Kind
from annotation.models import Candidate, Item, Membership, Project, Role

PASSWORD = "correct-horse-battery"
_counter = itertools.count()


def pytest_configure(config):
    """The worker tests (training runs, imports) share the test database with a worker
    process, which cannot see SQLite's in-memory test database: use a file in the data folder
    instead (PostgreSQL is shared as it is)."""
    db = django_settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3") and not (db.get("TEST") or {}).get("NAME"):
        db.setdefault("TEST", {})["NAME"] = str(Path(django_settings.DATA_DIR) / "test.sqlite3")
    # The password hash is not under test, and PBKDF2 costs 0.4 s a user: with three or four users
    # per test (the owner/member/outsider fixture) and their logins it was a third of the suite.
    django_settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def pytest_collection_modifyitems(config, items):
    """ARBITER_TEST_BROKERS=redis (or filesystem): run the real-worker tests on those brokers only.
    CI pairs the filesystem broker with SQLite (the embedded defaults) and Redis with PostgreSQL
    (production), instead of running every worker test four times."""
    wanted = [b for b in os.environ.get("ARBITER_TEST_BROKERS", "").split(",") if b]
    if not wanted:
        return
    keep, drop = [], []
    for item in items:
        broker = getattr(item, "callspec", None) and item.callspec.params.get("worker_env")
        (drop if broker and broker not in wanted else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(autouse=True)
def _isolated_storage(settings, tmp_path):
    """Artifacts and uploads of each test go to its own folder; Celery runs tasks inline unless
    a test starts a real worker."""
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    settings.UPLOAD_DIR = tmp_path / "uploads"
    settings.ARTIFACT_ROOT.mkdir()
    settings.UPLOAD_DIR.mkdir()
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttle counters live in the cache (config/security.py): each test starts from zero, so
    the many requests and logins of one test never throttle another. (Login failures counted
    by axes are rows, rolled back with the test.)"""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def make_user(db):
    def make(username: str | None = None, **extra):
        username = username or f"user{next(_counter)}"
        return get_user_model().objects.create_user(username=username, password=PASSWORD, email=f"{username}@example.org", **extra)

    return make


@pytest.fixture
def owner(make_user):
    return make_user("owner")


@pytest.fixture
def member(make_user):
    return make_user("member")


@pytest.fixture
def researcher(make_user):
    return make_user("researcher")


@pytest.fixture
def outsider(make_user):
    return make_user("outsider")


@pytest.fixture
def staff(make_user):
    return make_user("staff", is_staff=True, is_superuser=True)


@pytest.fixture
def make_project(db, owner, member, researcher):
    """make_project(kind=..., **settings): owner is manager, member a rater, researcher a researcher."""

    def make(kind: str = Kind.BINARY, slug: str | None = None, **fields) -> Project:
        slug = slug or f"{kind}-{next(_counter)}"
        project = Project.objects.create(slug=slug, name=fields.pop("name", slug.title()), kind=kind, created_by=owner, **fields)
        Membership.objects.create(project=project, user=owner, role=Role.MANAGER)
        Membership.objects.create(project=project, user=member, role=Role.RATER)
        Membership.objects.create(project=project, user=researcher, role=Role.RESEARCHER)
        return project

    return make


@pytest.fixture
def project(make_project):
    return make_project(Kind.BINARY, slug="demo")


@pytest.fixture
def add_items(db):
    """add_items(project, n, candidates=2, gold=None, chat=False) -> list[Item]."""

    def add(project: Project, n: int, candidates: int | None = None, gold: dict | None = None, chat: bool = False, prefix: str = "p") -> list[Item]:
        k = candidates or project.candidates_per_item or project.candidates_range[1] or 1
        start = Item.objects.filter(project=project).count()
        items = []
        for i in range(start, start + n):
            prompt = [{"role": "user", "content": f"Question {i}?"}] if chat else f"Question {i}?"
            items.append(Item(project=project, external_id=f"{prefix}-{i:05d}", prompt=prompt, gold=gold, is_gold=gold is not None))
        Item.objects.bulk_create(items)
        items = list(Item.objects.filter(project=project, external_id__in=[it.external_id for it in items]).order_by("id"))
        Candidate.objects.bulk_create(
            [Candidate(item=item, position=p, text=f"Answer {p} to {item.external_id}", model_name=f"model-{p}") for item in items for p in range(k)]
        )
        return items

    return add


@pytest.fixture
def client_for(db):
    """A Django test client logged in as the given user (None: anonymous)."""
    from django.test import Client

    def make(user):
        c = Client()
        if user is not None:
            c.force_login(user)
        return c

    return make


@pytest.fixture
def api_for(db):
    """A DRF API client authenticated with the user's token (None: anonymous)."""

    def make(user):
        c = APIClient()
        if user is not None:
            token, _ = Token.objects.get_or_create(user=user)
            c.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return c

    return make
