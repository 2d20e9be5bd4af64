"""Real Celery worker processes for tests: a private broker (the filesystem broker in a
temporary folder, or a Redis db of its own when Redis answers), the test database shared with them (a SQLite
file, see tests/conftest.py, or PostgreSQL), and a pool of workers a test can SIGKILL."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection


def _redis_db() -> int:
    """db 15, or one of 2..14 picked by ARBITER_TEST_DB_NAME: two suites at once (SQLite and
    PostgreSQL on one machine) must not flush or consume each other's messages."""
    name = os.environ.get("ARBITER_TEST_DB_NAME", "")
    return 2 + zlib.crc32(name.encode()) % 13 if name else 15


REDIS_URL = f"redis://127.0.0.1:6379/{_redis_db()}"


def _redis_or_skip():
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable here"
        # CI starts Redis: there a missing one is a broken machine, not a reason to test less.
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true but Redis is not reachable at {REDIS_URL}: {exc}")
        pytest.skip(f"Redis is not reachable at {REDIS_URL}: {exc}")
    client.flushdb()  # this db is ours: stale messages of an earlier run must not reach this worker
    return client


def _database_url() -> str:
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        name = str(s["NAME"])
        if "memory" in name:
            pytest.fail("the worker tests need a file-based SQLite test database (see tests/training/conftest.py)")
        return f"sqlite:///{name}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture(params=["filesystem", "redis"])
def worker_env(request, tmp_path, settings):
    """Point this process's Celery app at a private broker, and return the worker environment."""
    from config.celery import app

    data_dir = tmp_path / "worker-data"
    if request.param == "redis":
        _redis_or_skip()
        url, options = REDIS_URL, {}
    else:
        for sub in ("queue", "processed", "control"):
            (data_dir / "broker" / sub).mkdir(parents=True)
        url = "filesystem://"
        folder = str(data_dir / "broker" / "queue")
        options = {
            "data_folder_in": folder,
            "data_folder_out": folder,
            "processed_folder": str(data_dir / "broker" / "processed"),
            "store_processed": False,
            # kombu's default is ./control: without this the test wrote into the checkout.
            "control_folder": str(data_dir / "broker" / "control"),
        }
    saved = (app.conf.broker_url, app.conf.broker_transport_options)
    app.conf.broker_url, app.conf.broker_transport_options = url, options
    app._pool, app.amqp._producer_pool = None, None
    app.conf.task_always_eager = False
    env = {
        **os.environ,
        "ARBITER_DATA_DIR": str(data_dir),
        "ARTIFACT_ROOT": str(settings.ARTIFACT_ROOT),
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    yield env
    app.conf.broker_url, app.conf.broker_transport_options = saved
    app._pool, app.amqp._producer_pool = None, None


class Workers:
    def __init__(self, env: dict, folder: Path):
        self.env, self.folder, self.procs = env, folder, []

    def start(self, name: str, queue: str = "gpu") -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue, "--pool", "solo", "-c", "1",
             "-n", f"{name}@%h", "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=django_settings.BASE_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")

    def wait_ready(self, name: str, *, timeout: float = 240) -> None:
        """Until the worker has started and listens ('celery@… ready.'): on a loaded machine the
        start (Django, Celery, the app's imports) alone can take a minute."""
        wait_for(lambda: " ready." in self.log(name), timeout=timeout, what=f"worker {name} to start", workers=self, every=0.2)

    def stop_all(self):
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


@pytest.fixture
def workers(broker, tmp_path):
    """Worker processes started by the test (each test module defines `broker`: usually
    worker_env plus its own settings), all killed at the end."""
    pool = Workers(broker, tmp_path)
    yield pool
    pool.stop_all()


def wait_for(predicate, *, timeout: float, what: str, workers: Workers | None = None, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(workers.folder.glob("*.log"))) if workers else ""
    pytest.fail(f"timed out after {timeout} s waiting for {what}\n{logs}")
