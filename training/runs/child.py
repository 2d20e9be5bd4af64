"""One rank of a training attempt, started by training/runs/launcher.py through torchrun or accelerate:

    python -m training.runs.child RUN_ID ATTEMPT WORKER

Every rank trains; rank 0 alone writes to the row (fenced by ATTEMPT and WORKER, as the
supervising worker's writes are). Exit codes: 0 succeeded, 1 failed (rank 0 wrote why),
3 the run was taken over, 4 cancelled.
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import sys

EXIT_OK, EXIT_FAILED, EXIT_LOST, EXIT_CANCELLED = 0, 1, 3, 4


def _die_with_parent() -> None:
    """SIGKILL this rank when its launcher (torchrun) dies, however it dies: torchrun starts ranks in
    sessions of their own, so nothing else would stop an orphan from training on."""
    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent or parent == 1:
        os._exit(EXIT_LOST)


def _django_setup() -> None:
    import django
    from django.conf import settings

    inherited = os.environ.get("ARBITER_CHILD_DATABASE")
    if inherited:
        # Before the first connection: the worker's exact database (the test database in tests).
        settings.DATABASES["default"].update(json.loads(inherited))
    django.setup()


def main(argv: list[str]) -> int:
    run_id, attempt, worker = int(argv[0]), int(argv[1]), argv[2]
    _die_with_parent()
    _django_setup()
    from training.runs.runner import attempt_run

    return attempt_run(run_id=run_id, attempt=attempt, worker=worker, rank=int(os.environ.get("RANK", "0")))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
