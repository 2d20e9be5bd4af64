"""A training run on a GPU worker, top to bottom: claim the row, load the snapshot files as a
researcher would, build the model from the registry, train with heartbeats and checkpoints,
evaluate on the test split, register the model.

The row is the truth (DESIGN.md). A worker owns a run through a fencing token: the attempt
number it wrote when it claimed the row. Every later write is conditional on that token, so a
worker that was presumed dead and comes back can never overwrite the run another worker took over.
torch/transformers/trl are imported inside functions only.
"""
from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
import traceback
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from training.models import ModelArtifact, TrainingRun
from training.paths import artifact_path, artifact_relative, run_dir
from training.recipes.base import config_resolve, recipe_module
from training.runs import max_attempts

log = logging.getLogger(__name__)
Status = TrainingRun.Status
MAX_METRIC_POINTS = 1000


class RunLost(Exception):
    """Another worker owns the run now (we were presumed dead), or the row is gone."""


class RunCancelled(Exception):
    pass


def run_claim(*, run_id: int, worker_name: str) -> int | None:
    """Take the run: queued, or running with a stale heartbeat. One conditional UPDATE and a row
    count: of two deliveries of the same message only one gets 1 back. Returns the attempt number
    (the fencing token) or None when there is nothing to do."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.ARBITER_RUN_STALE_SECONDS)
    claimable = Q(status=Status.QUEUED, cancel_requested=False) | Q(
        status=Status.RUNNING, heartbeat_at__lt=cutoff, attempts__lt=max_attempts(), cancel_requested=False
    )
    with transaction.atomic():
        won = TrainingRun.objects.filter(claimable, pk=run_id).update(
            status=Status.RUNNING,
            worker=worker_name[:200],
            attempts=F("attempts") + 1,
            heartbeat_at=now,
            started_at=Coalesce(F("started_at"), Value(now)),
            error="",
        )
    if not won:
        return None
    return TrainingRun.objects.values_list("attempts", flat=True).get(pk=run_id)


class Progress:
    """Fenced writes to the run row, and (in the supervising worker) a heartbeat thread that says
    "this attempt is alive" through slow phases too (tokenizing, evaluation, saving).

    In a training child, rank 0 writes (`is_main`); the other ranks' writes are dropped, and
    nobody there beats: the supervisor does (training/launcher.py)."""

    def __init__(self, run: TrainingRun, *, attempt: int, worker: str, is_main: bool = True, beat: bool = True):
        self.run_id, self.attempt, self.worker = run.pk, attempt, worker
        self.is_main, self.beat = is_main, beat
        self.lines = collections.deque(run.log_tail.splitlines() if run.log_tail else [], maxlen=60)
        self.metrics = list(run.metrics or [])
        self.cancel = threading.Event()
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = None

    def _mine(self):
        return TrainingRun.objects.filter(pk=self.run_id, status=Status.RUNNING, attempts=self.attempt, worker=self.worker)

    def write(self, **fields) -> None:
        if not self.is_main:
            return
        with self._lock:
            fields.setdefault("heartbeat_at", timezone.now())
            if not self._mine().update(**fields):
                self.lost.set()
                raise RunLost(f"run {self.run_id} is no longer held by {self.worker} (attempt {self.attempt})")

    def say(self, line: str, **fields) -> None:
        log.info("run %s: %s", self.run_id, line)
        self.lines.append(f"{timezone.now():%H:%M:%S} {line}")
        self.write(log_tail="\n".join(self.lines), **fields)

    def owns(self) -> bool:
        """Whether this attempt still holds the run: asked before every write to disk."""
        if self.lost.is_set():
            return False
        if not self._mine().exists():
            self.lost.set()
        return not self.lost.is_set()

    def reload(self) -> None:
        """Take the row's log and curve as the child left them, before the supervisor writes again."""
        row = TrainingRun.objects.filter(pk=self.run_id).values("log_tail", "metrics").first() or {}
        self.lines = collections.deque((row.get("log_tail") or "").splitlines(), maxlen=60)
        self.metrics = list(row.get("metrics") or [])

    def add_metrics(self, point: dict) -> None:
        self.metrics.append(point)
        if len(self.metrics) > MAX_METRIC_POINTS:
            # Keep the whole curve at half resolution rather than only its end.
            self.metrics = self.metrics[::2]

    def check(self) -> None:
        if self.lost.is_set():
            raise RunLost(f"run {self.run_id} was taken over")
        if self.cancel.is_set():
            raise RunCancelled()

    def _beat(self) -> None:
        interval = max(1.0, settings.ARBITER_RUN_STALE_SECONDS / 4)
        try:
            while not self._stop.wait(interval):
                try:
                    with self._lock:
                        if not self._mine().update(heartbeat_at=timezone.now()):
                            # Our own child may have just finished the run: that is not a takeover.
                            mine = TrainingRun.objects.filter(pk=self.run_id, attempts=self.attempt, worker=self.worker)
                            if not mine.exclude(status=Status.RUNNING).exists():
                                self.lost.set()
                            return
                    if TrainingRun.objects.filter(pk=self.run_id, cancel_requested=True).exists():
                        self.cancel.set()
                except Exception:  # a database hiccup must not kill the heartbeat for good
                    log.exception("run %s: heartbeat failed", self.run_id)
        finally:
            connection.close()

    def __enter__(self):
        if not self.beat:
            return self
        self._thread = threading.Thread(target=self._beat, name=f"run-{self.run_id}-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def _callback(progress: Progress):
    from transformers import TrainerCallback

    class RunCallback(TrainerCallback):
        """Progress to the row every `logging_steps`; stops cleanly on cancel or lost ownership."""

        def on_train_begin(self, args, state, control, **kwargs):
            progress.write(total_steps=state.max_steps, step=state.global_step)

        def on_step_end(self, args, state, control, **kwargs):
            # The trainer saves right after this: a worker presumed dead must not write a checkpoint
            # into the folder the run's new owner resumes from.
            if control.should_save and progress.is_main and not progress.owns():
                control.should_save = False
            if progress.cancel.is_set() or progress.lost.is_set():
                control.should_training_stop = True
                control.should_save = False
            return control

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            if "loss" not in logs and "train_loss" not in logs:
                return
            point = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4)}
            for key, src in (("loss", "loss"), ("accuracy", "accuracy"), ("accuracy", "rewards/accuracies"),
                             ("margin", "margin"), ("margin", "rewards/margins"), ("learning_rate", "learning_rate"),
                             ("grad_norm", "grad_norm")):
                if src in logs and logs[src] is not None:
                    point[key] = float(logs[src])
            if "loss" not in point:
                return
            progress.add_metrics(point)
            parts = " ".join(f"{k}={v:.4g}" for k, v in point.items() if k not in ("step", "epoch"))
            try:
                progress.say(f"step {state.global_step}/{state.max_steps} {parts}", step=state.global_step, metrics=progress.metrics)
            except RunLost:
                control.should_training_stop = True

        def on_save(self, args, state, control, **kwargs):
            path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            try:
                progress.say(f"checkpoint saved at step {state.global_step}", checkpoint_path=artifact_relative(path), step=state.global_step)
            except RunLost:
                control.should_training_stop = True

    return RunCallback()


def last_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint: a worker killed while saving leaves a half-written folder,
    which must not be resumed from."""
    if not folder.is_dir():
        return None
    found = []
    for child in folder.iterdir():
        if child.name.startswith("checkpoint-") and child.name.split("-")[-1].isdigit():
            found.append((int(child.name.split("-")[-1]), child))
    for _, path in sorted(found, reverse=True):
        weights = any(path.glob("*.safetensors"))
        if weights and (path / "trainer_state.json").exists() and (path / "optimizer.pt").exists():
            return path
    return None


def _device():
    import torch

    import os

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if torch.cuda.is_available():
        idx = torch.cuda.current_device()
        name = f"cuda:{idx} {torch.cuda.get_device_name(idx)}" + (f" × {world} processes" if world > 1 else "")
        return "cuda", name, torch.cuda.is_bf16_supported()
    return "cpu", f"cpu ({torch.get_num_threads()} threads)" + (f" × {world} processes (gloo)" if world > 1 else ""), False


def _load_split(folder: Path, split: str, cache_dir: Path):
    from datasets import load_dataset

    path = folder / "preference" / f"{split}.jsonl"
    if not path.exists() or path.stat().st_size == 0:
        return None
    return load_dataset("json", data_files={split: str(path)}, split=split, cache_dir=str(cache_dir))


def _train(run: TrainingRun, progress: Progress) -> None:
    import torch

    recipe = recipe_module(run.method)
    device_type, device_name, bf16_ok = _device()
    folder = artifact_path(run.snapshot.path)
    base_path = artifact_path(run.base_model.path)
    work = run_dir(run.pk)
    checkpoints = work / "checkpoints"
    progress.say(f"attempt {progress.attempt} on {progress.worker}, {device_name}; snapshot {folder}", device=device_name[:100])

    train_ds = _load_split(folder, "train", work / "hf-cache")
    test_ds = _load_split(folder, "test", work / "hf-cache")
    if train_ds is None or len(train_ds) == 0:
        raise ValueError(f"{folder / 'preference' / 'train.jsonl'}: the snapshot has no preference pairs to train on")
    missing = {"prompt", "chosen", "rejected"} - set(train_ds.column_names)
    if missing:
        raise ValueError(f"{folder / 'preference' / 'train.jsonl'}: missing columns {', '.join(sorted(missing))}")
    progress.say(f"loaded {len(train_ds)} train and {len(test_ds) if test_ds is not None else 0} test pairs")
    progress.check()

    # LoRA freezes the base: keep its weights in bf16 on a GPU. Full training keeps fp32 master
    # weights and runs the matmuls in bf16 through autocast.
    from training.recipes.common import count_parameters, load_tokenizer

    tokenizer = load_tokenizer(base_path)
    dtype = torch.bfloat16 if (run.use_lora and device_type == "cuda" and bf16_ok) else torch.float32
    model = recipe.model_load(path=base_path, dtype=dtype)
    cfg = config_resolve(run.method, run.config, use_lora=run.use_lora, device_type=device_type, bf16_supported=bf16_ok, n_params=count_parameters(model))
    progress.say(f"model {run.base_model.name}: {count_parameters(model) / 1e6:.1f}M parameters, {'LoRA' if run.use_lora else 'full'}, "
                 f"lr {cfg.learning_rate:g}, bf16 {cfg.bf16}, gradient checkpointing {cfg.gradient_checkpointing}")
    progress.check()

    trainer = recipe.trainer_build(
        cfg=cfg, model=model, tokenizer=tokenizer, train_ds=train_ds, use_lora=run.use_lora,
        output_dir=checkpoints, device_type=device_type, callbacks=[_callback(progress)],
    )
    progress.check()
    resume = last_checkpoint(checkpoints)
    if resume is not None:
        progress.say(f"resuming from {resume.name}")
    started = time.monotonic()
    output = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    progress.check()  # training stopped early because of a cancel or a takeover

    progress.say("training done; evaluating on the test split")
    result = {
        "train_seconds": round(time.monotonic() - started, 2),
        "train_loss": output.training_loss,
        "global_step": trainer.state.global_step,
        "resumed_from_step": int(resume.name.split("-")[-1]) if resume else None,
        "resolved_config": dataclasses.asdict(cfg),  # what the device made of the "auto" settings
        "test": recipe.evaluate(trainer=trainer, cfg=cfg, test_ds=test_ds),
    }
    if hasattr(recipe, "samples"):
        result["samples"] = recipe.samples(trainer=trainer, cfg=cfg, test_ds=test_ds, base_path=base_path)
    progress.check()

    out_dir = output_dir(run.pk, attempt=progress.attempt)  # renamed into place by _finish, by the owner only
    recipe.save(trainer=trainer, out_dir=out_dir)
    progress.say(f"saved the {'adapter' if run.use_lora else 'model'} to {out_dir}")
    _finish(run, progress, result=result, out_dir=out_dir, kind=recipe.ARTIFACT_KIND, resolved=result["resolved_config"])


def _finish(run: TrainingRun, progress: Progress, *, result: dict, out_dir: Path, kind: str, resolved: dict) -> None:
    _ranks_wait()  # every rank has finished writing into out_dir before rank 0 renames it
    if not progress.is_main:
        return
    test = result.get("test") or {}
    with transaction.atomic():
        progress.say("succeeded", step=result["global_step"], metrics=progress.metrics, result=result)
        out_dir = output_publish(staged=out_dir, final=output_dir(run.pk))
        ModelArtifact.objects.update_or_create(
            run=run,
            defaults=dict(
                name=f"{run.base_model.name}-{run.method}-run{run.pk}"[:200],
                kind=kind,
                source=ModelArtifact.Source.TRAINED,
                path=artifact_relative(out_dir),
                is_adapter=run.use_lora,
                base_model=run.base_model,
                snapshot=run.snapshot,
                config={"method": run.method, "use_lora": run.use_lora, **resolved},
                metrics={k: v for k, v in test.items() if not isinstance(v, (dict, list))},
            ),
        )
        progress.write(status=Status.SUCCEEDED, finished_at=timezone.now())


def _ranks_wait() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def output_dir(run_id: int, *, attempt: int | None = None) -> Path:
    """models/run-<pk> once published; models/run-<pk>.attempt-<n> while attempt n writes it."""
    name = f"run-{run_id}" + (f".attempt-{attempt}" if attempt is not None else "")
    return Path(settings.ARTIFACT_ROOT) / "models" / name


def output_publish(*, staged: Path, final: Path) -> Path:
    """Rename an attempt's folder into place. Called inside the transaction whose fenced write has
    just marked the run succeeded: the row stays locked until the commit, so no other worker can
    take the run over in between, and a worker that lost the run never gets here. A folder left
    by an attempt that published and then failed to commit is replaced; other attempts' leftovers go."""
    import shutil

    if final.exists():
        shutil.rmtree(final)
    staged.rename(final)
    for other in final.parent.glob(f"{final.name}.attempt-*"):
        shutil.rmtree(other, ignore_errors=True)
    return final


def attempt_run(*, run_id: int, attempt: int, worker: str, rank: int = 0) -> int:
    """One rank of a training attempt (training/child.py): train, and on rank 0 record the outcome
    with fenced writes. Returns the child's exit code."""
    from training.child import EXIT_CANCELLED, EXIT_FAILED, EXIT_LOST, EXIT_OK

    run = TrainingRun.objects.select_related("snapshot", "base_model").get(pk=run_id)
    progress = Progress(run, attempt=attempt, worker=worker, is_main=rank == 0, beat=False)
    try:
        if not progress.owns():
            raise RunLost(f"run {run_id} is no longer held by {worker} (attempt {attempt})")
        from transformers import set_seed

        # Every rank and every attempt builds the model from the same random state (a reward head
        # is initialised at load time, before the trainer seeds): two runs of one config end equal.
        set_seed(int((run.config or {}).get("seed", 42)))
        _train(run, progress)
        return EXIT_OK
    except RunLost:
        log.warning("run %s: taken over by another worker; rank %s of attempt %s stops", run_id, rank, attempt)
        return EXIT_LOST
    except RunCancelled:
        return EXIT_CANCELLED
    except Exception as exc:
        log.exception("run %s failed on rank %s", run_id, rank)
        for line in traceback.format_exc().strip().splitlines()[-8:]:
            progress.lines.append(line)
        try:
            progress.say(f"failed: {type(exc).__name__}: {exc}", status=Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:5000],
                         finished_at=timezone.now())
        except RunLost:
            return EXIT_LOST
        return EXIT_FAILED


def run_execute(*, run_id: int, worker_name: str) -> str:
    """Entry point of the Celery task. Safe to call twice for one run: the second call finds the
    run claimed (or finished) and returns without doing anything. Otherwise it launches the attempt
    as a child process group and supervises it (training/launcher.py), one process or many."""
    from training.launcher import LaunchError, attempt_log, launch_command, log_tail, supervise, visible_gpus

    if not connection.in_atomic_block:
        close_old_connections()  # a long-lived worker may hold a connection the server has dropped
    attempt = run_claim(run_id=run_id, worker_name=worker_name)
    if attempt is None:
        log.info("run %s: nothing to do (finished, cancelled, or held by a live worker)", run_id)
        return "skipped"
    run = TrainingRun.objects.select_related("snapshot", "base_model").get(pk=run_id)
    with Progress(run, attempt=attempt, worker=worker_name) as progress:
        try:
            try:
                cmd, env = launch_command(run=run, attempt=attempt, worker=worker_name, gpus=visible_gpus())
            except LaunchError as exc:
                progress.say(f"failed: {exc}", status=Status.FAILED, error=str(exc), finished_at=timezone.now())
                return "failed"
            n = run.num_processes or 1
            progress.say(f"attempt {attempt}: launching {n} training process{'es' if n > 1 else ''} ({run.distributed})")
            log_path = attempt_log(run_id, attempt)
            code, stopped = supervise(cmd=cmd, env=env, log_path=log_path,
                                      should_stop=lambda: progress.cancel.is_set() or progress.lost.is_set())
            row = TrainingRun.objects.filter(pk=run_id).values("status", "attempts", "worker").first()
            ours = bool(row) and row["attempts"] == attempt and row["worker"] == worker_name[:200]
            if not ours or (progress.lost.is_set() and row["status"] == Status.RUNNING):
                log.warning("run %s: taken over by another worker; this copy stopped", run_id)
                return "lost"
            if row["status"] != Status.RUNNING:
                return {Status.SUCCEEDED: "succeeded", Status.FAILED: "failed", Status.CANCELLED: "cancelled"}.get(row["status"], row["status"])
            progress.reload()
            if progress.cancel.is_set():
                progress.say("cancelled at the manager's request", status=Status.CANCELLED, finished_at=timezone.now())
                return "cancelled"
            # The child died without recording why (a rank crashed, was killed, ran out of memory).
            for line in log_tail(log_path, 12):
                progress.lines.append(line[:500])
            reason = f"the training processes exited with code {code} (log: {artifact_relative(log_path)})"
            progress.say(f"failed: {reason}", status=Status.FAILED, error=reason, finished_at=timezone.now())
            return "failed"
        except RunLost:
            return "lost"
