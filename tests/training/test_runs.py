"""The run lifecycle without training: creating runs with validated settings, claiming a run
exactly once, stale runs requeued or failed, cancelling, and a web process that never loads torch."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from annotation.models import DatasetSnapshot
from training.models import ModelArtifact, TrainingRun
from training.runs.runner import last_checkpoint, run_claim
from training.runs.services import ConfigError, recipe_config_schema, run_cancel, run_create, runs_find_stale

pytestmark = pytest.mark.django_db


@pytest.fixture
def base(db):
    return ModelArtifact.objects.create(name="base", kind=ModelArtifact.Kind.CAUSAL_LM, source=ModelArtifact.Source.LOCAL, path="models/base")


def make_run(project, snapshot, base, **fields) -> TrainingRun:
    return TrainingRun.objects.create(project=project, snapshot=snapshot, base_model=base, method="reward", **fields)


def test_it_creates_a_queued_run_with_defaults_filled_and_enqueues_it_after_commit(project, snapshot, base, owner, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run = run_create(project=project, snapshot=snapshot, base_model=base, method="dpo", config={"beta": "0.2", "bf16": "auto"}, created_by=owner)
    # The message is sent by an on-commit hook: a worker never looks for a row that isn't there yet
    # (test_worker.py shows a real worker picking it up).
    assert len(callbacks) == 1
    assert run.status == TrainingRun.Status.QUEUED and run.use_lora and run.created_by == owner
    assert run.config["beta"] == 0.2 and run.config["bf16"] is None and run.config["loss_type"] == "sigmoid"
    assert run.config["save_steps"] == 50 and set(run.config) == {f["name"] for f in recipe_config_schema("dpo")}


@pytest.mark.parametrize(
    ("method", "config", "message"),
    [
        ("dpo", {"betta": 0.1}, "betta: unknown setting"),
        ("dpo", {"loss_type": "nope"}, "loss_type: 'nope' is not one of"),
        ("reward", {"learning_rate": "fast"}, "learning_rate: 'fast' is not a valid float"),
        ("reward", {"per_device_train_batch_size": 0}, "per_device_train_batch_size: 0 must be at least 1"),
        ("dpo", {"loss_type": "robust", "label_smoothing": 0.5}, "label_smoothing: must be below 0.5"),
        ("nope", {}, "method: 'nope' has no training recipe yet"),
    ],
)
def test_it_refuses_bad_settings_naming_the_field(project, snapshot, base, method, config, message):
    with pytest.raises(ConfigError, match=message):
        run_create(project=project, snapshot=snapshot, base_model=base, method=method, config=config)
    assert not TrainingRun.objects.exists()


def test_it_refuses_a_snapshot_that_is_not_ready_or_a_base_model_of_the_wrong_kind(project, snapshot, base, make_project):
    building = DatasetSnapshot.objects.create(project=project, version=2, status=DatasetSnapshot.Status.BUILDING)
    with pytest.raises(ConfigError, match="snapshot: .* is not ready"):
        run_create(project=project, snapshot=building, base_model=base, method="reward")
    other = make_project(slug="other")
    with pytest.raises(ConfigError, match="not a snapshot of project other"):
        run_create(project=other, snapshot=snapshot, base_model=base, method="reward")
    encoder = ModelArtifact.objects.create(name="enc", kind=ModelArtifact.Kind.ENCODER, source=ModelArtifact.Source.LOCAL, path="m/enc")
    with pytest.raises(ConfigError, match="base_model: a dpo run cannot start from an? encoder"):
        run_create(project=project, snapshot=snapshot, base_model=encoder, method="dpo")
    assert not TrainingRun.objects.exists()


def test_it_lets_only_one_delivery_claim_a_run(project, snapshot, base):
    run = make_run(project, snapshot, base)
    assert run_claim(run_id=run.pk, worker_name="w1@gpu1") == 1
    assert run_claim(run_id=run.pk, worker_name="w2@gpu2") is None  # the same message, delivered again
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.RUNNING and run.worker == "w1@gpu1" and run.attempts == 1 and run.started_at


def test_it_lets_a_new_worker_take_over_only_a_silent_run(project, snapshot, base):
    now = timezone.now()
    alive = make_run(project, snapshot, base, status=TrainingRun.Status.RUNNING, attempts=1, worker="w1", heartbeat_at=now)
    silent = make_run(project, snapshot, base, status=TrainingRun.Status.RUNNING, attempts=1, worker="w1", heartbeat_at=now - timedelta(hours=1))
    finished = make_run(project, snapshot, base, status=TrainingRun.Status.SUCCEEDED, attempts=1)
    assert run_claim(run_id=alive.pk, worker_name="w2") is None
    assert run_claim(run_id=finished.pk, worker_name="w2") is None
    assert run_claim(run_id=silent.pk, worker_name="w2") == 2


def test_it_requeues_stale_runs_and_fails_them_after_the_last_attempt(project, snapshot, base, settings, django_capture_on_commit_callbacks):
    settings.ARBITER_RUN_STALE_SECONDS = 60
    old = timezone.now() - timedelta(seconds=120)
    fresh = make_run(project, snapshot, base, status=TrainingRun.Status.RUNNING, attempts=1, worker="w1", heartbeat_at=timezone.now())
    stale = make_run(project, snapshot, base, status=TrainingRun.Status.RUNNING, attempts=1, worker="w1", heartbeat_at=old,
                     checkpoint_path="runs/2/checkpoints/checkpoint-40")
    spent = make_run(project, snapshot, base, status=TrainingRun.Status.RUNNING, attempts=3, worker="w9", heartbeat_at=old)
    cancelling = make_run(project, snapshot, base, status=TrainingRun.Status.RUNNING, attempts=1, heartbeat_at=old, cancel_requested=True)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert runs_find_stale() == [stale.pk]
    assert len(callbacks) == 1  # one message, sent after commit

    for run in (fresh, stale, spent, cancelling):
        run.refresh_from_db()
    assert fresh.status == TrainingRun.Status.RUNNING
    assert stale.status == TrainingRun.Status.QUEUED and "resume from runs/2/checkpoints/checkpoint-40" in stale.log_tail
    assert spent.status == TrainingRun.Status.FAILED and spent.finished_at
    assert "worker w9 stopped sending heartbeats" in spent.error and "all 3 attempts" in spent.error
    assert cancelling.status == TrainingRun.Status.CANCELLED
    assert runs_find_stale() == []  # nothing left running silently


def test_it_cancels_queued_runs_at_once_and_asks_running_ones_to_stop(project, snapshot, base):
    queued = make_run(project, snapshot, base)
    running = make_run(project, snapshot, base, status=TrainingRun.Status.RUNNING, attempts=1, heartbeat_at=timezone.now())
    done = make_run(project, snapshot, base, status=TrainingRun.Status.SUCCEEDED)
    assert run_cancel(run=queued).status == TrainingRun.Status.CANCELLED
    running = run_cancel(run=running)
    assert running.status == TrainingRun.Status.RUNNING and running.cancel_requested
    assert run_cancel(run=done).status == TrainingRun.Status.SUCCEEDED and not done.cancel_requested
    # A cancelled run is never claimed afterwards.
    assert run_claim(run_id=queued.pk, worker_name="w") is None


def test_it_describes_each_recipe_setting_for_forms():
    fields = {f["name"]: f for f in recipe_config_schema("reward")}
    assert fields["use_margin"]["type"] == "bool" and fields["use_margin"]["default"] is False
    assert fields["bf16"]["auto"] and fields["bf16"]["default"] is None and "GPU" in fields["bf16"]["help"]
    assert fields["lr_scheduler_type"]["choices"] == ["linear", "cosine", "constant", "constant_with_warmup"]
    assert "robust" in {f["name"]: f for f in recipe_config_schema("dpo")}["loss_type"]["choices"]


def test_it_resumes_only_from_a_complete_checkpoint(tmp_path):
    for step, files in ((10, ["model.safetensors", "trainer_state.json", "optimizer.pt"]), (20, ["model.safetensors"])):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        for name in files:
            (folder / name).write_text("x")
    assert last_checkpoint(tmp_path).name == "checkpoint-10"  # checkpoint-20 was cut short by a kill
    assert last_checkpoint(tmp_path / "missing") is None


def test_it_keeps_torch_out_of_the_web_process():
    code = "import django, sys; django.setup(); import training.runs.services, training.tasks, training.recipes.base; " \
           "print(json.dumps(sorted(m for m in ('torch', 'transformers', 'trl', 'peft', 'datasets') if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", "import json; " + code], cwd=django_settings.BASE_DIR, capture_output=True, text=True,
                         env={**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "config.settings"}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
