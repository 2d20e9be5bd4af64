"""Whether the process running an import is still alive, and what to do when it is not.

An import is one transaction, so a process killed in the middle of one (SIGKILL, out of
memory, a host restart) stored nothing of it; but its ImportBatch row still says "running".
A heartbeat cannot tell (the import's own transaction would hide it, and on SQLite it holds the
write lock), so each database gets the signal that dies with the process:

- PostgreSQL: the importing connection holds a session-level advisory lock on the batch. The
  server drops it when that connection ends, whichever host the worker was on; anyone who can
  take the lock knows the importer is gone.
- SQLite: every process that shares the file runs on this host, so the recorded "host:pid" is
  enough: no such process means nobody is importing.

`imports_recover` (every minute on the default worker, see CELERY_BEAT_SCHEDULE) queues a dead
import again while its uploaded file is still on disk, up to MAX_ATTEMPTS, and otherwise marks
it failed with a message that says so. A broker that redelivers the killed worker's message gets
there first: `import_batch_run` takes over a running batch whose importer is dead.
"""
from __future__ import annotations

import logging
import os
import socket
from contextlib import contextmanager
from pathlib import Path

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from annotation.models import ImportBatch

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
# First key of the advisory lock pair: keeps import locks apart from anything else's.
LOCK_SPACE = 0x4172_6269  # "Arbi"


def runner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@contextmanager
def importing(batch: ImportBatch):
    """Hold the liveness signal for this batch while the block runs (PostgreSQL: the advisory
    lock on this connection; SQLite: the row's worker field, set by the caller)."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [LOCK_SPACE, batch.id])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_SPACE, batch.id])


def importer_alive(batch: ImportBatch) -> bool:
    """Whether some process is still importing this running batch. When it cannot tell (a
    SQLite row written on another host), it answers yes: a live import is never taken over."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_SPACE, batch.id])
            free = cursor.fetchone()[0]
            if free:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_SPACE, batch.id])
        return not free
    host, _, pid = batch.worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _dead_reason(batch: ImportBatch) -> str:
    return f"the process importing it ({batch.worker or 'unknown'}) stopped before it finished"


def import_take_over(batch_id: int) -> bool:
    """Claim a running batch whose importer died, for this process. True when claimed."""
    batch = ImportBatch.objects.filter(id=batch_id, status=ImportBatch.Status.RUNNING).first()
    if batch is None or importer_alive(batch) or batch.attempts >= MAX_ATTEMPTS:
        return False
    # Conditional on the worker we saw: of two processes taking over at once, one wins.
    return bool(
        ImportBatch.objects.filter(id=batch.id, status=ImportBatch.Status.RUNNING, worker=batch.worker).update(
            worker=runner_id(), attempts=F("attempts") + 1
        )
    )


def imports_recover() -> list[int]:
    """Find running imports whose process died. Queue each again while its uploaded file is still
    there and it has attempts left; mark the others failed, saying why. Returns the requeued ids."""
    from annotation import tasks

    requeued = []
    for batch in ImportBatch.objects.filter(status=ImportBatch.Status.RUNNING):
        if importer_alive(batch):
            continue
        same = ImportBatch.objects.filter(id=batch.id, status=ImportBatch.Status.RUNNING, worker=batch.worker)
        has_file = bool(batch.path) and Path(batch.path).is_file()
        if has_file and batch.attempts < MAX_ATTEMPTS:
            with transaction.atomic():
                if same.update(status=ImportBatch.Status.QUEUED, worker=""):
                    transaction.on_commit(lambda batch_id=batch.id: tasks.import_batch_run.delay(batch_id))
                    requeued.append(batch.id)
                    log.warning("import %s: %s; queued again", batch.id, _dead_reason(batch))
            continue
        if not has_file:
            why = f"{_dead_reason(batch)}; nothing from the file was stored; import it again"
        else:
            why = f"{_dead_reason(batch)} {batch.attempts} times; nothing from the file was stored"
        if same.update(
            status=ImportBatch.Status.FAILED, finished_at=timezone.now(), path="",
            errors=[{"line": 0, "field": "import", "message": why}],
        ):
            log.warning("import %s failed: %s", batch.id, why)
            if has_file:
                Path(batch.path).unlink(missing_ok=True)
    return requeued
