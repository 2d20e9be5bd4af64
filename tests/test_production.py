"""The production profile (README: Production): the deploy checks pass, the generated secret
key is never readable by others, /health/ tells a load balancer the truth and leaks nothing,
and a database that does not answer gives a 503 with a reason, not a 500."""
from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.db import OperationalError
from django.test import Client

from tests.workers import wait_for, worker_env  # noqa: F401 - fixture

ROOT = django_settings.BASE_DIR
PROFILE = {"ARBITER_HTTPS": "1", "ARBITER_BEHIND_PROXY": "1", "DEBUG": "0", "ALLOWED_HOSTS": "arbiter.example.org"}


def _env(tmp_path, **extra) -> dict:
    # A deployment's environment: none of the test run's own switches (the browser tests set
    # DJANGO_ALLOW_ASYNC_UNSAFE for Playwright's event loop, which check --deploy rightly refuses).
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    return {**env, "ARBITER_DATA_DIR": str(tmp_path / "data"), **extra}


def test_it_passes_the_deploy_checks_under_the_production_profile(tmp_path):
    run = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=_env(tmp_path, **PROFILE), capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    # And the same checks do complain without the profile: the test can fail.
    bare = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                          cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert bare.returncode != 0 and "SECURE_SSL_REDIRECT" in bare.stderr + bare.stdout


KEY_PROBE = """
import os, pathlib, stat
os.umask(0o022)
# Any later chmod would be too late: the key must be private from the call that creates it.
os.chmod = pathlib.Path.chmod = lambda *a, **k: None
import django; django.setup()
from django.conf import settings
print(oct(stat.S_IMODE((settings.DATA_DIR / "secret_key").stat().st_mode)), len(settings.SECRET_KEY))
"""


def test_it_creates_the_secret_key_file_private_from_the_start(tmp_path):
    env = _env(tmp_path, DJANGO_SETTINGS_MODULE="config.settings")
    first = subprocess.run([sys.executable, "-c", KEY_PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert first.stdout.split() == ["0o600", "67"]
    key = (tmp_path / "data" / "secret_key").read_text()
    again = subprocess.run([sys.executable, "-c", KEY_PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert again.stdout.split() == ["0o600", "67"] and (tmp_path / "data" / "secret_key").read_text() == key
    assert stat.S_IMODE((tmp_path / "data" / "secret_key").stat().st_mode) == 0o600


@pytest.mark.django_db
def test_it_reports_unhealthy_without_workers_and_leaks_nothing(settings):
    settings.ARBITER_HEALTH_CACHE_SECONDS = 0
    response = Client().get("/health/")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "failing"
    assert body["checks"] == {"database": "ok", "broker": "ok", "worker:default": "failing", "worker:gpu": "failing", "worker:jobs": "failing",
                              "worker:score": "failing"}
    text = response.content.decode()
    for secret in (str(settings.DATA_DIR), settings.SECRET_KEY, "Traceback", "sqlite", "filesystem"):
        assert secret not in text


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_it_reports_healthy_when_every_queue_has_a_live_worker(worker_env, settings, tmp_path):
    from tests.workers import Workers

    settings.ARBITER_HEALTH_CACHE_SECONDS = 0
    pool = Workers(worker_env, tmp_path)
    try:
        pool.start("default-worker", queue="default")
        wait_for(lambda: Client().get("/health/").json()["checks"]["worker:default"] == "ok", timeout=60, what="the default worker", workers=pool)
        assert Client().get("/health/").status_code == 503  # no gpu worker yet
        pool.start("gpu-worker", queue="gpu")
        wait_for(lambda: Client().get("/health/").json()["checks"]["worker:gpu"] == "ok", timeout=60, what="the gpu worker", workers=pool)
        assert Client().get("/health/").status_code == 503  # no jobs worker yet
        pool.start("jobs-worker", queue="jobs")
        wait_for(lambda: Client().get("/health/").json()["checks"]["worker:jobs"] == "ok", timeout=60, what="the jobs worker", workers=pool)
        assert Client().get("/health/").status_code == 503  # no score worker yet
        pool.start("score-worker", queue="score")
        response = wait_for(lambda: (r := Client().get("/health/")).status_code == 200 and r, timeout=60, what="every worker", workers=pool)
        assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok", "worker:default": "ok", "worker:gpu": "ok",
                                                              "worker:jobs": "ok", "worker:score": "ok"}}
    finally:
        pool.stop_all()


@pytest.mark.django_db
def test_it_answers_503_with_a_reason_when_the_database_does_not_answer(project, member, api_for, client_for, monkeypatch):
    import annotation.sql

    def down(*args, **kwargs):
        raise OperationalError("connection to server at 127.0.0.1, port 5432 failed: Connection refused")

    api, page = api_for(member), client_for(member)
    api.raise_request_exception = page.raise_request_exception = False
    monkeypatch.setattr(annotation.sql, "cursor", down)
    response = api.post("/api/projects/demo/next/", format="json")
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert response.json()["code"] == "database_unavailable" and "try again" in response.json()["detail"]
    assert "5432" not in response.content.decode()

    monkeypatch.setattr("django.db.backends.base.base.BaseDatabaseWrapper.cursor", down)
    response = page.get("/projects/demo/")
    assert response.status_code == 503 and "Temporarily unavailable" in response.content.decode()
