"""A two-process run whose worker is SIGKILLed after a checkpoint resumes on another worker and
ends with exactly the weights of a run never interrupted (every tensor equal, bit for bit).
The killed worker's training processes die with it (PR_SET_PDEATHSIG), not train on as orphans."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from safetensors.torch import load_file

from tests.training.conftest import preference_rows
from tests.workers import wait_for, worker_env, workers  # noqa: F401 - fixtures
from training.models import ModelArtifact, TrainingRun
from training.runs.runner import run_execute
from training.runs.services import run_create, runs_find_stale

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.timeout(600)]

STALE_SECONDS = 5
CONFIG = {"max_steps": 40, "per_device_train_batch_size": 4, "learning_rate": 1e-2, "max_length": 48, "logging_steps": 5,
          "save_steps": 10, "save_total_limit": 2}


@pytest.fixture
def broker(worker_env, settings):
    if worker_env["CELERY_BROKER_URL"].startswith("redis"):
        pytest.skip("the resume is broker-independent; tests/training/test_worker.py covers both brokers")
    settings.ARBITER_RUN_STALE_SECONDS = STALE_SECONDS
    return {**worker_env, "ARBITER_RUN_STALE_SECONDS": str(STALE_SECONDS)}


def training_processes(run_id: int) -> list[int]:
    """Live ranks of this test's run: `training.runs.child RUN_ID ...` on the command line, and this
    test's artifact folder in the environment (other test runs on the machine have their own)."""
    from django.conf import settings

    mine = f"ARTIFACT_ROOT={settings.ARTIFACT_ROOT}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if b"training.runs.child" not in argv or state == "Z":
                continue
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        at = argv.index(b"training.runs.child")
        if argv[at + 1 : at + 2] == [str(run_id).encode()] and mine in environ:
            found.append(int(entry.name))
    return found


def weights(run: TrainingRun, settings) -> dict:
    model = ModelArtifact.objects.get(run=run)
    return load_file(Path(settings.ARTIFACT_ROOT) / model.path / "model.safetensors")


def test_it_resumes_a_killed_two_process_run_to_the_same_weights(project, tiny_model, make_snapshot, workers, settings):
    base = tiny_model()
    snapshot = make_snapshot(project, preference_rows(96, seed=31), preference_rows(8, seed=32))
    make = lambda: run_create(project=project, snapshot=snapshot, base_model=base, method="reward", use_lora=False,  # noqa: E731
                              config=CONFIG, num_processes=2)

    # Never interrupted: supervised from this process (its queued message is skipped by w1 later).
    reference = make()
    assert run_execute(run_id=reference.pk, worker_name="reference") == "succeeded"
    reference.refresh_from_db()
    assert reference.status == TrainingRun.Status.SUCCEEDED, reference.log_tail

    first = workers.start("w1")
    run = make()
    wait_for(lambda: TrainingRun.objects.get(pk=run.pk).checkpoint_path, timeout=300, what="a first checkpoint", workers=workers, every=0.02)
    os.killpg(first.pid, signal.SIGKILL)  # the worker only: its training processes must follow it
    first.wait(timeout=30)
    killed = TrainingRun.objects.get(pk=run.pk)
    assert killed.status == TrainingRun.Status.RUNNING and 10 <= killed.step < 40, killed.log_tail
    wait_for(lambda: not training_processes(run.pk), timeout=60, what="the killed worker's training processes to die", workers=workers)

    workers.start("w2")
    wait_for(lambda: runs_find_stale() == [run.pk] or TrainingRun.objects.get(pk=run.pk).attempts == 2, timeout=60,
             what="the run to be found stale", every=0.5)
    done = wait_for(lambda: (r := TrainingRun.objects.get(pk=run.pk)).status in ("succeeded", "failed") and r, timeout=400,
                    what="the resumed run to finish", workers=workers)
    assert done.status == TrainingRun.Status.SUCCEEDED, done.log_tail
    assert done.attempts == 2 and done.result["resumed_from_step"] >= 10 and "resuming from checkpoint-" in done.log_tail

    expected, got = weights(reference, settings), weights(done, settings)
    assert expected.keys() == got.keys()
    differ = [name for name in expected if not (expected[name].dtype == got[name].dtype and expected[name].equal(got[name]))]
    assert not differ, f"tensors differ after the resume: {differ}"
