"""An import whose process died (SIGKILL, out of memory) stored nothing, being one transaction;
its batch must not stay "running" forever. It is queued again while its file is still there,
taken over by a redelivered message, or failed with a message that says what happened; a live
import is never touched (annotation/importers/liveness.py)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from django.db import connection

from annotation.importers import import_batch_run
from annotation.importers.liveness import LOCK_SPACE, MAX_ATTEMPTS, imports_recover, runner_id
from annotation.models import ImportBatch, Item
from tests.workers import wait_for, worker_env, workers  # noqa: F401 - fixtures

def write_upload(folder, n: int, prefix: str = "r"):
    path = folder / f"{prefix}-upload.jsonl"
    with path.open("w") as out:
        for i in range(n):
            out.write(json.dumps({"id": f"{prefix}{i}", "prompt": f"Question {i}?", "responses": [f"yes {i}", f"no {i}"]}) + "\n")
    return path


@pytest.fixture
def dead_worker() -> str:
    """The "host:pid" of a process that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return f"{runner_id().rpartition(':')[0]}:{proc.pid}"


@pytest.fixture
def stuck(project, settings, dead_worker):
    """stuck(n, attempts=1, with_file=True): a batch left running by a process that died."""

    def make(n: int = 5, *, attempts: int = 1, with_file: bool = True) -> ImportBatch:
        path = write_upload(settings.UPLOAD_DIR, n) if with_file else ""
        return ImportBatch.objects.create(
            project=project, filename="big.jsonl", path=str(path), status=ImportBatch.Status.RUNNING,
            worker=dead_worker, attempts=attempts,
        )

    return make


@pytest.fixture
def alive():
    """alive(batch): make the batch's importer look alive the way a real one does (PostgreSQL:
    another session holds its advisory lock; SQLite: the row names a live process)."""
    held = []

    def make(batch: ImportBatch) -> None:
        if connection.vendor == "postgresql":
            import psycopg

            s = connection.settings_dict
            other = psycopg.connect(host=s["HOST"] or "127.0.0.1", port=s["PORT"] or 5432, user=s["USER"], dbname=s["NAME"], autocommit=True)
            other.execute("SELECT pg_advisory_lock(%s, %s)", [LOCK_SPACE, batch.id])
            held.append(other)
        else:
            ImportBatch.objects.filter(id=batch.id).update(worker=runner_id())

    yield make
    for other in held:
        other.close()


def test_a_dead_import_is_queued_again_and_imports_everything(stuck, settings, django_capture_on_commit_callbacks):
    batch = stuck(5)
    with django_capture_on_commit_callbacks(execute=True):
        assert imports_recover() == [batch.id]
    batch.refresh_from_db()
    assert (batch.status, batch.items_created, batch.attempts, batch.worker) == ("succeeded", 5, 2, runner_id())
    assert Item.objects.filter(project=batch.project).count() == 5
    assert list(settings.UPLOAD_DIR.iterdir()) == []  # the file goes once imported


def test_a_live_import_is_left_alone_and_a_second_message_does_nothing(stuck, alive, django_capture_on_commit_callbacks):
    batch = stuck(5)
    alive(batch)
    with django_capture_on_commit_callbacks(execute=True):
        assert imports_recover() == []
        assert import_batch_run(batch_id=batch.id) is None
    batch.refresh_from_db()
    assert batch.status == "running" and batch.attempts == 1
    assert not Item.objects.filter(project=batch.project).exists()


def test_a_redelivered_message_takes_over_a_dead_import(stuck):
    batch = stuck(3)
    done = import_batch_run(batch_id=batch.id)
    assert (done.status, done.items_created, done.attempts) == ("succeeded", 3, 2)


def test_a_dead_import_without_its_file_fails_and_says_why(stuck, dead_worker):
    batch = stuck(with_file=False)  # an API or command import: the records were in the dead process
    assert imports_recover() == []
    batch.refresh_from_db()
    assert batch.status == "failed" and batch.finished_at is not None
    [error] = batch.errors
    assert dead_worker in error["message"] and "stopped before it finished" in error["message"]
    assert "nothing from the file was stored" in error["message"] and "import it again" in error["message"]


def test_an_import_that_keeps_dying_fails_after_its_attempts(stuck, settings):
    batch = stuck(5, attempts=MAX_ATTEMPTS)
    assert imports_recover() == []
    batch.refresh_from_db()
    assert batch.status == "failed" and f"{MAX_ATTEMPTS} times" in batch.errors[0]["message"]
    assert batch.path == "" and list(settings.UPLOAD_DIR.iterdir()) == []
    assert import_batch_run(batch_id=batch.id) is None  # nor does a late message revive it


# --- a real worker, killed mid-import ----------------------------------------------------------


@pytest.fixture
def broker(worker_env):
    # The batch row holds the upload's absolute path: the worker reads it from there.
    return worker_env


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_import_leaves_nothing_and_the_import_finishes_on_the_next(project, settings, workers):
    n = 150_000  # several seconds of importing on this machine: time to kill it in the middle
    path = write_upload(settings.UPLOAD_DIR, n)
    batch = ImportBatch.objects.create(project=project, filename="big.jsonl", path=str(path))
    first = workers.start("w1", queue="default")
    from annotation import tasks

    tasks.import_batch_run.apply_async(args=[batch.id], queue="default")
    wait_for(lambda: ImportBatch.objects.get(id=batch.id).status == "running", timeout=60, what="the import to start", workers=workers, every=0.02)
    # Its inserts are invisible until it commits; a moment in, thousands are in its transaction.
    time.sleep(1.5)
    assert ImportBatch.objects.get(id=batch.id).status == "running", "the import must still be running when killed"
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=30)

    killed = ImportBatch.objects.get(id=batch.id)
    assert killed.status == "running" and killed.attempts == 1
    assert not Item.objects.filter(project=project).exists()  # one transaction: nothing half-imported

    workers.start("w2", queue="default")
    # The filesystem broker lost the message with the worker; a broker that redelivers it may
    # let w2 take the import over before the recovery check runs.
    wait_for(lambda: imports_recover() == [batch.id] or ImportBatch.objects.get(id=batch.id).attempts == 2,
             timeout=60, what="the dead import to be noticed", workers=workers, every=0.5)
    done = wait_for(lambda: (b := ImportBatch.objects.get(id=batch.id)).status in ("succeeded", "failed") and b,
                    timeout=240, what="the import to finish on w2", workers=workers)
    assert done.status == "succeeded", done.errors
    assert (done.items_created, done.attempts) == (n, 2) and done.worker != killed.worker
    assert Item.objects.filter(project=project).count() == n
