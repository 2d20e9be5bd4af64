"""How the `gpu` worker runs a training attempt: as a child process group it starts and supervises.

One path for every run, one process or many: the worker (the supervisor) claims the row, keeps
its heartbeat, and starts

    torchrun --standalone --nproc_per_node N -m training.runs.child RUN ATTEMPT WORKER      (DDP, CPU or GPU)
    accelerate launch --config_file training/runs/accelerate/{fsdp,zero3}.yaml -m training.runs.child ...

in a session of its own (so signalling it never touches the worker). Every rank runs the recipe;
rank 0 writes progress to the row, fenced by the attempt number like every write (the other
ranks' progress is a no-op). The supervisor owns the heartbeat: it is the one process that lives
for the whole attempt and is not busy in a collective, tokenizing or saving, so "the heartbeat
stopped" means exactly "nobody supervises this run any more", which is what the stale check acts
on. It watches the row for a cancel or a takeover and then stops the whole group (SIGTERM,
SIGKILL after a grace period).

A killed worker must not leave an orphan training on: the launcher process gets
PR_SET_PDEATHSIG=SIGTERM (torchrun stops its ranks on SIGTERM), and each rank gets SIGKILL when
torchrun itself dies (training/runs/child.py). Even so an orphan could write for a moment; its writes
are fenced and its output goes to a per-attempt folder (training/runs/runner.py).

GPUs: the child sees exactly N devices through CUDA_VISIBLE_DEVICES, so with several GPUs and
N = 1 no Hugging Face Trainer ever wraps the model in nn.DataParallel.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

from training.runs.models import TrainingRun

log = logging.getLogger(__name__)
ACCELERATE_CONFIGS = Path(__file__).resolve().parent / "accelerate"
STOP_GRACE_SECONDS = 20
PR_SET_PDEATHSIG = 1


class LaunchError(ValueError):
    """The run cannot start on this worker (too few devices, a strategy it cannot run)."""


def visible_gpus() -> list[str]:
    """The GPU ids this worker may hand out, as CUDA_VISIBLE_DEVICES names them."""
    declared = os.environ.get("CUDA_VISIBLE_DEVICES")
    if declared is not None:
        return [d.strip() for d in declared.split(",") if d.strip() and d.strip() != "-1"]
    import torch  # the gpu worker only; counts devices through NVML without creating a CUDA context

    return [str(i) for i in range(torch.cuda.device_count())]


def _database_for_child() -> str:
    """The worker's own database settings, exactly (options included: SQLite's IMMEDIATE and busy
    timeout), so that the child writes where the worker reads, tests' databases included."""
    s = connection.settings_dict
    keys = ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT", "OPTIONS", "CONN_MAX_AGE")
    return json.dumps({k: s.get(k) for k in keys}, default=str)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_command(*, run: TrainingRun, attempt: int, worker: str, gpus: list[str]) -> tuple[list[str], dict]:
    """The command line and environment of one attempt. Raises LaunchError naming the field."""
    n = int(run.num_processes or 1)
    strategy = run.distributed or TrainingRun.Distributed.DDP
    child = ["-m", "training.runs.child", str(run.pk), str(attempt), worker]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings"),
        "ARBITER_CHILD_DATABASE": _database_for_child(),
        "ARTIFACT_ROOT": str(settings.ARTIFACT_ROOT),
        "ARBITER_DATA_DIR": str(settings.DATA_DIR),
        "ARBITER_RUN_STALE_SECONDS": str(settings.ARBITER_RUN_STALE_SECONDS),
        "PYTHONUNBUFFERED": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    if gpus:
        if n > len(gpus):
            raise LaunchError(f"num_processes: the run asks for {n} devices and this worker sees {len(gpus)} (CUDA_VISIBLE_DEVICES={','.join(gpus)})")
        env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus[:n])
    else:
        if strategy != TrainingRun.Distributed.DDP:
            raise LaunchError(f"distributed: {strategy} shards the model across GPUs and this worker has none; use ddp on CPU")
        env["CUDA_VISIBLE_DEVICES"] = ""
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // n)))
    if strategy == TrainingRun.Distributed.ZERO3 and importlib.util.find_spec("deepspeed") is None:
        raise LaunchError("distributed: zero3 needs the deepspeed package on the gpu worker (pip install deepspeed)")
    if strategy == TrainingRun.Distributed.DDP:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc_per_node", str(n),
               "--max_restarts", "0", *child]
    else:
        config = ACCELERATE_CONFIGS / f"{strategy}.yaml"
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config), "--num_processes", str(n),
               "--num_machines", "1", "--machine_rank", "0", "--main_process_port", str(_free_port()), *child]
    # The first process dies with the worker (PDEATHSIG survives exec): see the module docstring.
    wrapped = [sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid()), *cmd]
    return wrapped, env


# Run before exec'ing the launcher: set PR_SET_PDEATHSIG, then check the worker did not die
# before that (the signal would never come), then become torchrun / accelerate.
_DIE_WITH_PARENT = (
    "import ctypes,os,signal,sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)\n"
    "os.getppid() == int(sys.argv[1]) or sys.exit(70)\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


def attempt_log(run_id: int, attempt: int) -> Path:
    from training.core.paths import run_dir

    return run_dir(run_id) / f"attempt-{attempt}.log"


def log_tail(path: Path, lines: int = 20) -> list[str]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    keep = [line for line in text.splitlines() if line.strip()]
    return keep[-lines:]


def supervise(*, cmd: list[str], env: dict, log_path: Path, should_stop) -> tuple[int, bool]:
    """Start the child group, wait for it, stop it when `should_stop()` says so.
    Returns (exit code, whether we stopped it)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=settings.BASE_DIR, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    (log_path.parent / f"{log_path.stem}.pid").write_text(str(proc.pid))
    stopped = False
    while True:
        try:
            return proc.wait(timeout=0.25), stopped
        except subprocess.TimeoutExpired:
            pass
        if not stopped and should_stop():
            stopped = True
            group_stop(proc)


def group_stop(proc: subprocess.Popen) -> None:
    """SIGTERM the launcher's group (torchrun passes it to its ranks), SIGKILL after a grace period.
    Ranks run in sessions of their own (torchrun starts them so) and die with torchrun (child.py)."""
    for sig, wait in ((signal.SIGTERM, STOP_GRACE_SECONDS), (signal.SIGKILL, 30)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return
            time.sleep(0.1)
