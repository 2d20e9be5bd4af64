"""Training through real Celery worker processes (`celery -A config worker -Q gpu --pool solo`),
sharing the test database (a SQLite file, or PostgreSQL) and a broker (the filesystem broker in a
temporary folder, or Redis when it is reachable). A worker is killed with SIGKILL after a
checkpoint; the run is found stale, resumes from the checkpoint on a new worker and finishes; a
duplicate message does not start a second copy; a running run can be cancelled."""
from __future__ import annotations

import os
import signal

import pytest

from tests.training.conftest import preference_rows
from tests.workers import wait_for, worker_env, workers  # noqa: F401 - fixtures
from training.models import ModelArtifact, TrainingRun
from training.runs.services import run_cancel, run_create, runs_find_stale
from training.tasks import run_training

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.timeout(420)]

STALE_SECONDS = 5


@pytest.fixture
def broker(worker_env, settings):
    settings.ARBITER_RUN_STALE_SECONDS = STALE_SECONDS
    return {**worker_env, "ARBITER_RUN_STALE_SECONDS": str(STALE_SECONDS)}


def run_row(run) -> TrainingRun:
    return TrainingRun.objects.get(pk=run.pk)


LONG = {"per_device_train_batch_size": 8, "learning_rate": 1e-2, "max_length": 64, "logging_steps": 2, "save_steps": 10, "save_total_limit": 3}


def test_it_resumes_from_the_last_checkpoint_after_the_worker_is_killed(project, tiny_model, make_snapshot, workers):
    base = tiny_model()
    snapshot = make_snapshot(project, preference_rows(160, seed=21), preference_rows(40, seed=22))
    first = workers.start("w1")
    run = run_create(project=project, snapshot=snapshot, base_model=base, method="reward", use_lora=False, config={**LONG, "max_steps": 80})

    wait_for(lambda: run_row(run).checkpoint_path, timeout=240, what="a first checkpoint", workers=workers, every=0.02)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    killed = run_row(run)
    assert killed.status == TrainingRun.Status.RUNNING and killed.attempts == 1 and killed.worker.startswith("w1@")
    assert 10 <= killed.step < 80, "the worker must die mid-run"

    # Nobody finishes the run until the stale check notices the silence and queues it again.
    workers.start("w2")
    # (A broker that redelivers the killed worker's message may let w2 claim the stale run first.)
    wait_for(lambda: runs_find_stale() == [run.pk] or run_row(run).attempts == 2, timeout=60, what="the run to be found stale", every=0.5)
    # The same message delivered a second time must not start a second copy.
    run_training.apply_async(args=[run.pk], queue="gpu")

    done = wait_for(lambda: (r := run_row(run)).status in ("succeeded", "failed") and r, timeout=300, what="the resumed run to finish", workers=workers)
    assert done.status == TrainingRun.Status.SUCCEEDED, done.log_tail
    assert done.worker.startswith("w2@") and done.attempts == 2
    assert done.result["resumed_from_step"] >= 10 and done.result["global_step"] == 80 == done.step
    assert "resuming from checkpoint-" in done.log_tail
    steps = [m["step"] for m in done.metrics]
    assert steps[0] <= killed.step and steps[-1] == 80  # one curve across both attempts
    assert ModelArtifact.objects.filter(run=run).count() == 1
    wait_for(lambda: "nothing to do" in workers.log("w2"), timeout=60, what="the duplicate message to be skipped", workers=workers)
    assert run_row(run).attempts == 2


def test_it_cancels_a_running_run_through_the_worker(project, tiny_model, make_snapshot, broker, workers):
    if broker["CELERY_BROKER_URL"].startswith("redis"):
        pytest.skip("cancel is broker-independent; the filesystem broker covers it")
    base = tiny_model()
    snapshot = make_snapshot(project, preference_rows(64, seed=23), preference_rows(16, seed=24))
    workers.start("w1")
    run = run_create(project=project, snapshot=snapshot, base_model=base, method="dpo", config={**LONG, "max_steps": 5000, "save_steps": 1000})

    wait_for(lambda: run_row(run).step >= 2, timeout=240, what="training to start", workers=workers)
    run_cancel(run=run)
    done = wait_for(lambda: (r := run_row(run)).status != "running" and r, timeout=60, what="the run to stop", workers=workers)
    assert done.status == TrainingRun.Status.CANCELLED, done.log_tail
    assert done.step < 5000 and done.finished_at is not None and "cancelled" in done.log_tail
    assert not ModelArtifact.objects.filter(run=run).exists()
    # A queued run is cancelled at once, without a worker.
    queued = TrainingRun.objects.create(project=project, snapshot=snapshot, base_model=base, method="reward")
    assert run_cancel(run=queued).status == TrainingRun.Status.CANCELLED
