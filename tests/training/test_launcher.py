"""Runs through the launcher (training/runs/launcher.py): every run is a supervised child process
group, one process or several; two gloo processes on CPU train, checkpoint and register a model;
the launch refuses what the worker cannot run instead of falling back to something else."""
from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import load_file

from tests.training.conftest import preference_rows, sft_rows, unpaired_rows
from training.runs.launcher import LaunchError, launch_command
from training.models import ModelArtifact, TrainingRun
from training.runs.services import ConfigError, run_create

FAST = {"max_steps": 6, "per_device_train_batch_size": 4, "learning_rate": 1e-2, "max_length": 48, "logging_steps": 2, "save_steps": 3}


def _cmd_env(run, gpus):
    cmd, env = launch_command(run=run, attempt=1, worker="w", gpus=gpus)
    return " ".join(cmd), env


@pytest.mark.django_db
def test_it_pins_a_one_process_run_to_one_gpu_and_refuses_what_it_cannot_run(project, snapshot, base_model):
    run = TrainingRun.objects.create(project=project, snapshot=snapshot, base_model=base_model, method="reward")
    # Several GPUs visible and one process asked for: the child sees one, so no nn.DataParallel.
    cmd, env = _cmd_env(run, ["0", "1", "2", "3"])
    assert env["CUDA_VISIBLE_DEVICES"] == "0" and "--nproc_per_node 1" in cmd and "training.runs.child" in cmd
    run.num_processes = 2
    cmd, env = _cmd_env(run, ["2", "3", "5"])
    assert env["CUDA_VISIBLE_DEVICES"] == "2,3" and "--nproc_per_node 2" in cmd
    # CPU worker: gloo processes, and no GPU leaks in.
    cmd, env = _cmd_env(run, [])
    assert env["CUDA_VISIBLE_DEVICES"] == "" and "--nproc_per_node 2" in cmd
    run.distributed = TrainingRun.Distributed.FSDP
    cmd, env = _cmd_env(run, ["0", "1"])
    assert "accelerate.commands.launch" in cmd and "fsdp.yaml" in cmd and "--num_processes 2" in cmd
    with pytest.raises(LaunchError, match="distributed: fsdp .* has none"):
        _cmd_env(run, [])
    run.distributed, run.num_processes = TrainingRun.Distributed.DDP, 4
    with pytest.raises(LaunchError, match="num_processes: the run asks for 4 devices and this worker sees 2"):
        _cmd_env(run, ["0", "1"])


@pytest.mark.django_db(transaction=True)
def test_it_fails_a_run_the_worker_cannot_launch_saying_why(project, tiny_model, make_snapshot):
    base = tiny_model()
    snapshot = make_snapshot(project, preference_rows(8, seed=1), preference_rows(4, seed=2))
    run = run_create(project=project, snapshot=snapshot, base_model=base, method="reward", config=FAST, distributed="fsdp", num_processes=2)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED and "fsdp" in run.error and "has none" in run.error
    with pytest.raises(ConfigError, match="num_processes"):
        run_create(project=project, snapshot=snapshot, base_model=base, method="reward", num_processes=0)
    with pytest.raises(ConfigError, match="distributed"):
        run_create(project=project, snapshot=snapshot, base_model=base, method="reward", distributed="horovod")


@pytest.mark.dbless
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_it_trains_a_reward_model_on_two_cpu_processes(project, tiny_model, make_snapshot, settings):
    base = tiny_model()
    snapshot = make_snapshot(project, preference_rows(48, seed=3), preference_rows(8, seed=4))
    run = run_create(project=project, snapshot=snapshot, base_model=base, method="reward", use_lora=False, config=FAST, num_processes=2)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.SUCCEEDED, run.log_tail
    assert "2 processes (gloo)" in run.device and "launching 2 training processes (ddp)" in run.log_tail
    assert run.step == run.total_steps == 6 and run.result["global_step"] == 6
    model = ModelArtifact.objects.get(run=run)
    folder = Path(settings.ARTIFACT_ROOT) / model.path
    assert model.path == f"models/run-{run.pk}" and load_file(folder / "model.safetensors")
    assert not list(folder.parent.glob(f"run-{run.pk}.attempt-*")), "the attempt's folder was renamed into place"
    # Both ranks checkpointed their own random state: a resume restores both.
    assert {p.name for p in (Path(settings.ARTIFACT_ROOT) / "runs" / str(run.pk) / "checkpoints" / "checkpoint-6").glob("rng_state_*")} == {
        "rng_state_0.pth", "rng_state_1.pth"}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("method, fmt, rows", [("dpo", "preference", preference_rows), ("sft", "sft", sft_rows),
                                               ("kto", "unpaired", unpaired_rows)])
@pytest.mark.dbless
def test_it_trains_each_policy_method_with_lora_on_two_cpu_processes(project, tiny_model, make_snapshot, method, fmt, rows):
    """DDP with LoRA: every trainable weight must take part in each step (no unused-parameter walk)."""
    snapshot = make_snapshot(project, rows(48, seed=5), rows(8, seed=6), fmt=fmt)
    run = run_create(project=project, snapshot=snapshot, base_model=tiny_model(), method=method, use_lora=True,
                     config={**FAST, "max_steps": 4, "sample_prompts": 1, "sample_max_new_tokens": 4}, num_processes=2)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.SUCCEEDED, run.log_tail
    assert "2 processes (gloo)" in run.device and run.result["global_step"] == 4
    assert ModelArtifact.objects.get(run=run).is_adapter


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.django_db(transaction=True)
def test_it_cancels_a_two_process_run_by_stopping_the_whole_group(project, tiny_model, make_snapshot, settings):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    from tests.training.test_resume import training_processes
    from tests.workers import wait_for
    from training.runs.runner import run_execute
    from training.runs.services import run_cancel

    settings.ARBITER_RUN_STALE_SECONDS = 5  # the supervisor looks for the cancel flag every 1.25 s
    base = tiny_model()
    snapshot = make_snapshot(project, preference_rows(64, seed=7), preference_rows(8, seed=8))
    run = TrainingRun.objects.create(project=project, snapshot=snapshot, base_model=base, method="reward", num_processes=2,
                                     config={**FAST, "max_steps": 100000, "save_steps": 100000})

    def supervise():
        try:
            return run_execute(run_id=run.pk, worker_name="w1")
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        outcome = pool.submit(supervise)
        wait_for(lambda: TrainingRun.objects.get(pk=run.pk).step >= 2, timeout=200, what="training to start")
        assert len(training_processes(run.pk)) >= 2
        run_cancel(run=run)
        assert outcome.result(timeout=90) == "cancelled"
    done = TrainingRun.objects.get(pk=run.pk)
    assert done.status == TrainingRun.Status.CANCELLED and done.finished_at and "cancelled at the manager's request" in done.log_tail
    wait_for(lambda: not training_processes(run.pk), timeout=30, what="every rank to stop")
    assert not ModelArtifact.objects.filter(run=run).exists()
