"""`GET /health/` for load balancers: 200 when the database answers, the broker accepts a
connection and every queue (default, gpu, jobs, score) has a live worker; 503 otherwise.

No login (a load balancer has none) and nothing in the answer beyond ok/failing per check: no
host names, versions or error texts. Each check is bounded by a short timeout, and the worker
check (a broadcast ping) is cached for a few seconds so a probe every second costs one ping
per few seconds, not one per probe.
"""
from __future__ import annotations

import time

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

QUEUES = ("default", "gpu", "jobs", "score")  # jobs: judge, evaluation, generation, registration; score: the API's scoring
_workers_seen: dict = {"at": 0.0, "queues": set()}


def _database() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone()[0] == 1
    except Exception:  # noqa: BLE001 - any failure is "failing"; its text is not for the prober
        return False


def _broker() -> bool:
    from config.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=settings.ARBITER_HEALTH_TIMEOUT)
        return True
    except Exception:  # noqa: BLE001 - any failure is "failing"; its text is not for the prober
        return False


def _live_queues() -> set[str]:
    """Queues consumed by at least one worker that answered a ping just now."""
    from config.celery import app

    now = time.monotonic()
    if now - _workers_seen["at"] < settings.ARBITER_HEALTH_CACHE_SECONDS:
        return _workers_seen["queues"]
    try:
        replies = app.control.inspect(timeout=settings.ARBITER_HEALTH_TIMEOUT).active_queues() or {}
    except Exception:  # noqa: BLE001 - any failure is "failing"; its text is not for the prober
        replies = {}
    queues = {queue["name"] for worker_queues in replies.values() for queue in worker_queues or ()}
    _workers_seen.update(at=now, queues=queues)
    return queues


@never_cache
def health(request):
    checks = {"database": _database(), "broker": _broker()}
    live = _live_queues() if checks["broker"] else set()
    checks.update({f"worker:{queue}": queue in live for queue in QUEUES})
    ok = all(checks.values())
    return JsonResponse(
        {"status": "ok" if ok else "failing", "checks": {name: "ok" if passed else "failing" for name, passed in checks.items()}},
        status=200 if ok else 503,
    )
