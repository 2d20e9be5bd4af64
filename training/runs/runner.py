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
import logging
import threading
import traceback
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from training.runs import lifecycle
from training.registry.models import ModelArtifact
from training.runs.models import TrainingRun
from training.core.paths import artifact_path, artifact_relative, run_dir
from training.recipes import catalog
from training.recipes.common import last_checkpoint  # noqa: F401 - re-exported: the run lifecycle's tests read it here
from training.recipes.catalog import TrainContext

log = logging.getLogger(__name__)
Status = TrainingRun.Status
MAX_METRIC_POINTS = 1000


# The lifecycle's exceptions under the names this module's readers know.
RunLost = lifecycle.Lost
RunCancelled = lifecycle.Cancelled


def run_claim(*, run_id: int, worker_name: str) -> int | None:
    """Take the run (training/runs/lifecycle.py): the attempt number, the fencing token, or None."""
    return lifecycle.claim(TrainingRun, pk=run_id, worker_name=worker_name)


class Progress:
    """Fenced writes to the run row, and (in the supervising worker) a heartbeat thread that says
    "this attempt is alive" through slow phases too (tokenizing, evaluation, saving).

    In a training child, rank 0 writes (`is_main`); the other ranks' writes are dropped, and
    nobody there beats: the supervisor does (training/runs/launcher.py)."""

    def __init__(self, run: TrainingRun, *, attempt: int, worker: str, is_main: bool = True, beat: bool = True):
        self.run_id, self.attempt, self.worker = run.pk, attempt, worker
        self.is_main, self.beat = is_main, beat
        self.lines = collections.deque(run.log_tail.splitlines() if run.log_tail else [], maxlen=60)
        self.points = list(run.metrics or [])
        self.total = run.total_steps or 0
        self.cancel = threading.Event()
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = None

    def _mine(self):
        return lifecycle.held(TrainingRun, pk=self.run_id, attempt=self.attempt, worker=self.worker)

    def write(self, **fields) -> None:
        if not self.is_main:
            return
        with self._lock:
            fields.setdefault("heartbeat_at", timezone.now())
            if "total_steps" in fields:
                self.total = fields["total_steps"] or 0
            if "step" in fields and "phase" not in fields and "status" not in fields:
                # The phase follows the step counter: once the last step is done the recipe is
                # evaluating on the test split (which can take minutes), not training.
                fields["phase"] = "evaluating" if self.total and fields["step"] >= self.total else "training"
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
        self.points = list(row.get("metrics") or [])

    # --- the Progress protocol of training/recipes/catalog.py ---

    def metrics(self, point: dict) -> None:
        self.points.append(point)
        if len(self.points) > MAX_METRIC_POINTS:
            # Keep the whole curve at half resolution rather than only its end.
            self.points = self.points[::2]
        self.write(metrics=self.points, **({"step": point["step"]} if isinstance(point.get("step"), int) else {}))

    def steps(self, *, step: int, total: int | None = None) -> None:
        self.write(step=step, **({"total_steps": total} if total is not None else {}))

    def checkpoint(self, *, path: Path, step: int) -> None:
        self.say(f"checkpoint saved at step {step}", checkpoint_path=artifact_relative(path), step=step)

    def should_stop(self) -> bool:
        return self.cancel.is_set() or self.lost.is_set()

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


def _train(run: TrainingRun, progress: Progress) -> None:
    """Build the recipe's context from the row and run the recipe (training/recipes/catalog.py)."""
    from training.recipes.common import progress_callback

    recipe = catalog.get(run.method)
    work = run_dir(run.pk)
    out_dir = output_dir(run.pk, attempt=progress.attempt)  # renamed into place by _finish, by the owner only
    progress.say(f"attempt {progress.attempt} on {progress.worker}")
    rm = run.reward_model
    ctx = TrainContext(
        run_id=run.pk,
        method=run.method,
        config=run.config,
        use_lora=run.use_lora,
        snapshot_dir=artifact_path(run.snapshot.path),
        base_model_path=artifact_path(run.base_model.path),
        base_model_name=run.base_model.name,
        out_dir=out_dir,
        checkpoint_dir=work / "checkpoints",
        work_dir=work,
        progress=progress,
        callbacks=[progress_callback(progress, recipe.all_metrics())],
        reward_model_path=artifact_path(rm.path) if rm is not None else None,
        reward_model_is_adapter=bool(rm and rm.is_adapter),
        # An adapter reward model is loaded on its base (online recipes read this).
        extra={"reward_model_base_path": artifact_path(rm.base_model.path)} if rm is not None and rm.is_adapter and rm.base_model else {},
    )
    from training.recipes.common import device_info

    progress.write(device=device_info()[1][:100])
    result = recipe.train_fn()(ctx)
    progress.check()
    if recipe.needs_reward_model:  # online runs keep their checkpoints as policies (training/runs/checkpoints.py)
        from training.runs.results import checkpoint_records

        result["checkpoints"] = checkpoint_records(ctx.checkpoint_dir, progress.points)
    _finish(run, progress, result=result, out_dir=out_dir, kind=recipe.produces, resolved=result.get("resolved_config") or {})


def _finish(run: TrainingRun, progress: Progress, *, result: dict, out_dir: Path, kind: str, resolved: dict) -> None:
    _ranks_wait()  # every rank has finished writing into out_dir before rank 0 renames it
    if not progress.is_main:
        return
    test = result.get("test") or {}
    with transaction.atomic():
        progress.say("succeeded", step=result["global_step"], metrics=progress.points, result=result, phase="saving")
        out_dir = output_publish(staged=out_dir, final=output_dir(run.pk))
        artifact, _ = ModelArtifact.objects.update_or_create(
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
        if artifact.kind == ModelArtifact.Kind.REWARD_MODEL:
            from training.selection.services import on_reward_model_registered

            on_reward_model_registered(model=artifact)  # projects ordered by their newest RM are rescored


def _evaluate_after(run: TrainingRun) -> None:
    """An offline policy run (DPO, SFT, KTO) is evaluated against its base on the held-out prompts
    as a job of its own (training/loop/evaluation.py), judged by the newest reward model trained on the
    project; online methods (PPO, RLOO, GRPO) evaluate with their own reward model as they finish.
    Never fails the run: the model is registered already."""
    try:
        from training.loop.evaluation import evaluate_after_run
        from training.registry.selectors import newest_reward_model

        if catalog.get(run.method).needs_reward_model or not run.evaluate_after:
            return  # online runs evaluate as they finish; the manager may have turned it off
        judge = newest_reward_model(run.project)
        if judge is not None:
            evaluate_after_run(run, reward_model=judge)
    except Exception:  # an evaluation that cannot be queued costs the figures, not the run
        log.exception("run %s: could not queue its evaluation", run.pk)


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
    """One rank of a training attempt (training/runs/child.py): train, and on rank 0 record the outcome
    with fenced writes. Returns the child's exit code."""
    from training.runs.child import EXIT_CANCELLED, EXIT_FAILED, EXIT_LOST, EXIT_OK

    run = TrainingRun.objects.select_related("snapshot", "base_model", "reward_model").get(pk=run_id)
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
    as a child process group and supervises it (training/runs/launcher.py), one process or many."""
    from training.runs.launcher import LaunchError, attempt_log, launch_command, log_tail, supervise, visible_gpus

    if not connection.in_atomic_block:
        close_old_connections()  # a long-lived worker may hold a connection the server has dropped
    attempt = run_claim(run_id=run_id, worker_name=worker_name)
    if attempt is None:
        log.info("run %s: nothing to do (finished, cancelled, or held by a live worker)", run_id)
        return "skipped"
    run = TrainingRun.objects.select_related("snapshot", "base_model", "reward_model").get(pk=run_id)
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
            if row["status"] == Status.SUCCEEDED:
                _evaluate_after(run)
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
