"""Fault runs: Arbiter under killed workers, a restarted database, a restarted broker and a full disk.

    .venv/bin/python bench/fault_runs.py                  # all four runs, a few minutes each
    .venv/bin/python bench/fault_runs.py --runs a,b       # some of them

Each run prints what it did and what it found, and ends with OK or FAILED:
(a) gunicorn workers SIGKILLed every few seconds (--kills, default 20) during a closed loop of
    50 raters on PostgreSQL: no acknowledged judgment lost, none stored twice, no item over
    its overlap (bench/load.py's raters and checks; a rater whose request dies retries it with
    the same client key, as a real client would);
(b) PostgreSQL stopped (immediate, like a crash) mid-load for --down seconds and started
    again: requests get 503 with a reason while it is down, the service answers 200 again
    within seconds of it coming back, nothing acknowledged is lost;
(c) Redis (the broker) killed and started again while snapshot builds and training runs are
    queued: afterwards each job ran exactly once (every task id received once, every snapshot
    ready, every run succeeded with one attempt);
(d) the artifact disk (a small tmpfs) fills during a snapshot build: the build fails naming
    the full disk, leaves no half-written folder, and the next build succeeds once there is room.

Only PRIVATE servers are started, stopped and restarted: a PostgreSQL cluster on --pg-port
(initdb in a temporary folder, run as the `postgres` user) and redis-server on --redis-port.
Needs root for the tmpfs of run (d) and to run PostgreSQL as `postgres`.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
PY = sys.executable
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


def say(text: str) -> None:
    print(text, flush=True)


# --- private servers -------------------------------------------------------------------------

class PrivatePostgres:
    def __init__(self, port: int, folder: Path):
        self.port, self.folder = port, folder
        self.data = folder / "pgdata"

    def _as_postgres(self, *cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(["runuser", "-u", "postgres", "--", *cmd], capture_output=True, text=True, timeout=120)

    def init(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.folder, "postgres", "postgres")
        out = self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        if out.returncode:
            raise SystemExit(f"initdb failed: {out.stderr}")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.folder}'\n"
                       "fsync = on\nmax_connections = 200\n")
        self.start()

    def start(self) -> None:
        out = self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "pg.log"), "-w", "start")
        if out.returncode:
            raise SystemExit(f"pg_ctl start failed: {out.stdout}{out.stderr}")

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/arbiter_faults"


class PrivateRedis:
    def __init__(self, port: int, folder: Path):
        self.port, self.folder = port, folder
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        # The broker's queue must survive a restart: append-only file, fsynced on every write.
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder), "--save", "",
             "--appendonly", "yes", "--appendfsync", "always"],
            stdout=(self.folder / "redis.log").open("a"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        import redis

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.5).ping()
                return
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.1)
        raise SystemExit("redis-server did not start")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


# --- Django in this process ------------------------------------------------------------------

def django_setup(env: dict) -> None:
    os.environ.update(env)
    import django

    django.setup()


def fresh_database(pg: PrivatePostgres) -> None:
    import psycopg

    with psycopg.connect(f"postgres://postgres@127.0.0.1:{pg.port}/postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS arbiter_faults WITH (FORCE)")
        conn.execute("CREATE DATABASE arbiter_faults")


# --- load with faults --------------------------------------------------------------------------

class TimedStats:
    """load.Stats plus the time of every answer, to see what happened while a server was down."""

    def __init__(self):
        import load

        self.inner = load.Stats()
        self.events: list[tuple[float, str, int]] = []
        self.samples: dict[int, bytes] = {}

    def add(self, call: str, ms: float, status: int) -> None:
        self.inner.add(call, ms, status)
        self.events.append((time.monotonic(), call, status))

    def ack(self, judgment_id: int) -> None:
        self.inner.ack(judgment_id)

    def error(self, message: str) -> None:
        self.inner.error(message)
        self.events.append((time.monotonic(), "error", 0))


def resilient_loop(*, port: int, tokens: list[str], seconds: float, stats: TimedStats) -> None:
    """load.py's closed loop, except that a rater whose request died (worker killed, server
    down) waits a moment and carries on instead of stopping."""
    import load

    class SamplingRater(load.Rater):
        def _call(self, path, body):
            status, data = super()._call(path, body)
            if status >= 500 and status not in stats.samples:
                stats.samples[status] = json.dumps(data).encode() if data is not None else b""
            return status, data

    deadline = time.monotonic() + seconds

    def run(token: str) -> None:
        rater = SamplingRater(port, token, "load")
        while time.monotonic() < deadline:
            try:
                if not rater.session(stats):
                    return
            except Exception as exc:  # noqa: BLE001 - counted; the rater tries again
                stats.error(repr(exc))
                rater._disconnect()
                time.sleep(0.05)

    threads = [threading.Thread(target=run, args=(t,), daemon=True) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 60)


def verify_all(project_id: int, acknowledged: set[int], overlap: int) -> dict:
    import load
    from django.db import connection

    found = load.verify(project_id, acknowledged, overlap)
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM (SELECT item_id, rater_id FROM annotation_judgment GROUP BY 1, 2 HAVING count(*) > 1) x")
        found["stored_twice"] = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM (SELECT client_key FROM annotation_judgment WHERE client_key <> '' GROUP BY 1 HAVING count(*) > 1) x")
        found["client_key_twice"] = cur.fetchone()[0]
    return found


def load_ok(found: dict) -> bool:
    return not any(found[k] for k in ("lost", "items_over_overlap", "double_assignments", "same_rater_twice", "stored_twice", "client_key_twice"))


def gunicorn_workers(master: subprocess.Popen) -> list[int]:
    import load

    return load._children(master.pid)


def run_a(args, pg: PrivatePostgres, workdir: Path, env: dict) -> bool:
    import load
    from django.db import connection

    say(f"\n=== (a) gunicorn workers SIGKILLed during a closed loop of {args.raters} raters (PostgreSQL)")
    project_id, tokens = seed_load(args)
    port = load.free_port()
    server = load.start_server(port=port, workers=3, threads=1, env=env, log=workdir / "gunicorn-a.log")
    stats = TimedStats()
    kills: list[int] = []
    stop = threading.Event()

    def killer() -> None:
        time.sleep(2)
        while not stop.is_set() and len(kills) < args.kills:
            children = gunicorn_workers(server)
            if children:
                victim = random.choice(children)
                try:
                    os.kill(victim, signal.SIGKILL)
                    kills.append(victim)
                except ProcessLookupError:
                    pass
            stop.wait(args.kill_every)

    seconds = 2 + args.kills * args.kill_every + 3
    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    started = time.monotonic()
    resilient_loop(port=port, tokens=tokens[: args.raters], seconds=seconds, stats=stats)
    stop.set()
    thread.join()
    elapsed = time.monotonic() - started
    load.stop_server(server)
    connection.close()
    found = verify_all(project_id, stats.inner.acknowledged, 2)
    say(f"did: {len(kills)} workers SIGKILLed (one every {args.kill_every:g} s) over {elapsed:.0f} s of load")
    say(f"saw: {len(stats.inner.acknowledged):,} judgments acknowledged ({len(stats.inner.acknowledged) / elapsed:.0f}/s); "
        f"next {stats.inner.statuses['next']}, submit {stats.inner.statuses['submit']}; {len(stats.inner.errors)} dropped connections retried")
    say(f"found: {json.dumps(found)}")
    ok = load_ok(found) and len(kills) >= args.kills
    say(f"(a) {'OK' if ok else 'FAILED'}")
    return ok


def seed_load(args) -> tuple[int, list[str]]:
    import load
    from django.contrib.auth import get_user_model
    from django.db import connection

    from annotation.models import Project

    Project.objects.filter(slug="load").delete()
    get_user_model().objects.filter(username__startswith="load").delete()
    project_id, tokens = load.seed(n_items=args.items, n_raters=args.raters, overlap=2)
    connection.close()
    return project_id, tokens


def run_b(args, pg: PrivatePostgres, workdir: Path, env: dict) -> bool:
    import load
    from django.db import connection

    say(f"\n=== (b) PostgreSQL stopped for {args.down:g} s mid-load ({args.raters} raters) and started again")
    project_id, tokens = seed_load(args)
    port = load.free_port()
    server = load.start_server(port=port, workers=3, threads=1, env=env, log=workdir / "gunicorn-b.log")
    stats = TimedStats()
    marks: dict[str, float] = {}

    def fault() -> None:
        time.sleep(8)
        marks["stop"] = time.monotonic()
        pg.stop("immediate")
        marks["stopped"] = time.monotonic()
        time.sleep(args.down)
        pg.start()
        marks["started"] = time.monotonic()

    thread = threading.Thread(target=fault, daemon=True)
    thread.start()
    resilient_loop(port=port, tokens=tokens[: args.raters], seconds=8 + args.down + 20, stats=stats)
    thread.join()
    load.stop_server(server)
    connection.close()
    down = [(t, c, s) for t, c, s in stats.events if marks["stopped"] <= t <= marks["started"]]
    statuses_down: dict[str, int] = {}
    for _, c, s in down:
        statuses_down[f"{c}:{s}"] = statuses_down.get(f"{c}:{s}", 0) + 1
    after = [(t, c, s) for t, c, s in stats.events if t > marks["started"]]
    first_ok = next((t for t, c, s in after if c == "submit" and s in (200, 201)), None)
    errors_after = [(t, c, s) for t, c, s in after if s >= 500 or c == "error"]
    last_error_after = max((t for t, _, _ in errors_after), default=marks["started"])
    server_errors = sum(1 for _, _, s in stats.events if s == 500)
    found = verify_all(project_id, stats.inner.acknowledged, 2)
    say(f"did: stopped PostgreSQL (immediate) at +8 s, down {marks['started'] - marks['stopped']:.1f} s, started again")
    say(f"saw while down: {statuses_down}; a 503 body: {stats.samples.get(503, b'(none)').decode()[:200]}")
    recovered = (first_ok - marks["started"]) if first_ok else None
    say(f"saw after: first acknowledged submit {recovered:.2f} s after PostgreSQL was back; last error "
        f"{last_error_after - marks['started']:.2f} s after; HTTP 500s in the whole run: {server_errors}" if recovered is not None else
        "saw after: no acknowledged submit after PostgreSQL came back")
    say(f"saw overall: {len(stats.inner.acknowledged):,} judgments acknowledged; next {stats.inner.statuses['next']}, submit {stats.inner.statuses['submit']}")
    say(f"found: {json.dumps(found)}")
    ok = (load_ok(found) and recovered is not None and recovered < 10 and server_errors == 0
          and any(k.endswith(":503") for k in statuses_down) and last_error_after - marks["started"] < 10)
    say(f"(b) {'OK' if ok else 'FAILED'}")
    return ok


# --- (c) broker restart --------------------------------------------------------------------------

def start_worker(env: dict, queue: str, name: str, workdir: Path) -> subprocess.Popen:
    log = (workdir / f"worker-{name}.log").open("a")
    return subprocess.Popen(
        [PY, "-m", "celery", "-A", "config", "worker", "-Q", queue, "--pool", "solo", "-c", "1", "-n", f"{name}@%h",
         "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )


def stop_worker(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def judged_project(slug: str, n: int):
    """A binary project with n items judged by two raters (enough for a snapshot and a reward model)."""
    from django.contrib.auth import get_user_model

    from annotation.models import Candidate, Item, Judgment, Membership, Project, Role

    User = get_user_model()
    project = Project.objects.create(slug=slug, name=slug, kind="binary", overlap=2)
    raters = [User.objects.get_or_create(username=f"{slug}-r{i}")[0] for i in range(2)]
    Membership.objects.bulk_create([Membership(project=project, user=u, role=Role.RATER) for u in raters])
    items = Item.objects.bulk_create([Item(project=project, external_id=f"{slug}-{i}", prompt=f"Question {i}?") for i in range(n)])
    Candidate.objects.bulk_create([Candidate(item=it, position=p, text=["Thank you, gladly: the answer is yes.", "No. Go away."][p]) for it in items for p in (0, 1)])
    Judgment.objects.bulk_create([Judgment(project=project, item=it, rater=u, kind="binary", value={"winner": 0}) for it in items for u in raters])
    return project


def run_c(args, pg: PrivatePostgres, workdir: Path, env: dict) -> bool:
    from django.db import transaction

    from annotation.exports import snapshot_create
    from annotation.exports.build import snapshot_build
    from annotation.models import DatasetSnapshot
    from tests.training.conftest import build_tiny_model
    from training.registry.models import ModelArtifact
    from training.runs.models import TrainingRun
    from training.runs.services import run_create

    say(f"\n=== (c) Redis (broker) killed and restarted with {args.snapshots} snapshot builds and {args.trainings} training runs queued")
    redis_server = PrivateRedis(args.redis_port, workdir / "redis")
    redis_server.start()
    from config.celery import app

    app.conf.broker_url = redis_server.url
    app._pool, app.amqp._producer_pool = None, None
    wenv = {**env, "CELERY_BROKER_URL": redis_server.url}
    project = judged_project("broker", 60)
    # A ready snapshot to train from, built here (not through the broker).
    with transaction.atomic():
        base_snapshot = snapshot_create(project=project, options={}, enqueue=False)
    snapshot_build(snapshot_id=base_snapshot.id)
    base_snapshot.refresh_from_db()
    from django.conf import settings

    build_tiny_model(Path(settings.ARTIFACT_ROOT) / "models" / "tiny")
    base = ModelArtifact.objects.create(name="tiny-faults", kind=ModelArtifact.Kind.CAUSAL_LM, source=ModelArtifact.Source.LOCAL, path="models/tiny")
    default = start_worker(wenv, "default", "default", workdir)
    gpu = start_worker(wenv, "gpu", "gpu", workdir)
    snapshots, runs = [], []
    for _ in range(args.snapshots):
        with transaction.atomic():
            snapshots.append(snapshot_create(project=project, options={}))
    for _ in range(args.trainings):
        runs.append(run_create(project=project, snapshot=base_snapshot, base_model=base, method="reward", use_lora=False,
                               config={"max_steps": 6, "per_device_train_batch_size": 8, "max_length": 64, "logging_steps": 2}))
    import redis

    queued = {q: redis.Redis(port=args.redis_port).llen(q) for q in ("default", "gpu")}
    time.sleep(0.5)
    redis_server.kill()
    killed_at = time.monotonic()
    say(f"did: queued {len(snapshots)} snapshot builds and {len(runs)} reward-model runs (messages waiting: {queued}), "
        f"SIGKILLed redis-server 0.5 s later, down {args.down:g} s, started it again on the same append-only file")
    time.sleep(args.down)
    redis_server.start()
    deadline = time.monotonic() + args.job_timeout
    terminal_s = {DatasetSnapshot.Status.READY, DatasetSnapshot.Status.FAILED}
    terminal_r = {TrainingRun.Status.SUCCEEDED, TrainingRun.Status.FAILED, TrainingRun.Status.CANCELLED}
    while time.monotonic() < deadline:
        s_done = DatasetSnapshot.objects.filter(id__in=[s.id for s in snapshots], status__in=terminal_s).count()
        r_done = TrainingRun.objects.filter(id__in=[r.id for r in runs], status__in=terminal_r).count()
        if s_done == len(snapshots) and r_done == len(runs):
            break
        time.sleep(1)
    settle = time.monotonic() - killed_at
    time.sleep(3)  # a duplicate delivery would show up now
    stop_worker(default)
    stop_worker(gpu)
    redis_server.kill()
    logs = "".join((workdir / f"worker-{n}.log").read_text(errors="replace") for n in ("default", "gpu"))
    import re

    received: dict[str, int] = {}
    for _task, tid in re.findall(r"Task (annotation\.snapshot_build|training\.tasks\.run_training)\[([0-9a-f-]+)\] received", logs):
        received[tid] = received.get(tid, 0) + 1
    snap_status = list(DatasetSnapshot.objects.filter(id__in=[s.id for s in snapshots]).values_list("status", flat=True))
    run_rows = list(TrainingRun.objects.filter(id__in=[r.id for r in runs]).values_list("status", "attempts"))
    ran_twice = {t: n for t, n in received.items() if n > 1}
    say(f"saw: everything settled {settle:.0f} s after the kill; task messages received by workers: {len(received)} "
        f"distinct, {sum(received.values())} in all; received more than once: {ran_twice or 'none'}")
    say(f"found: snapshots {snap_status}; runs (status, attempts) {run_rows}")
    # Exactly once means the work: every snapshot built (a second delivery finds it ready and
    # does nothing) and every run trained in one attempt. Deliveries are reported above.
    folders = {s.id: len(list(Path(s_path).parent.glob(f"v{v}*"))) for s, s_path, v in
               [(s, DatasetSnapshot.objects.get(id=s.id).path or "/nonexistent/x", s.version) for s in snapshots]}
    say(f"found: version folders per snapshot {sorted(folders.values())}")
    ok = (len(received) >= len(snapshots) + len(runs) and all(s == "ready" for s in snap_status)
          and all(n == 1 for n in folders.values()) and all(s == "succeeded" and a == 1 for s, a in run_rows))
    if not ok:
        say(logs[-3000:])
    say(f"(c) {'OK' if ok else 'FAILED'}")
    return ok


# --- (d) full disk -------------------------------------------------------------------------------

def run_d(args, pg: PrivatePostgres, workdir: Path, env: dict) -> bool:
    from django.conf import settings
    from django.db import transaction

    from annotation.exports import snapshot_create
    from annotation.exports.build import snapshot_build

    say("\n=== (d) the artifact disk fills during a snapshot build")
    mount = workdir / "artifacts-tmpfs"
    mount.mkdir()
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={args.disk_kb}k", "tmpfs", str(mount)], capture_output=True, text=True)
    if out.returncode:
        say(f"(d) SKIPPED: cannot mount a tmpfs here ({out.stderr.strip()})")
        return False
    saved_root = settings.ARTIFACT_ROOT
    try:
        settings.ARTIFACT_ROOT = mount
        project = judged_project("disk", args.disk_items)
        filler = mount / "other-data.bin"
        # Leave less room than one snapshot needs: the build runs out part way.
        free = shutil.disk_usage(mount).free
        filler.write_bytes(b"\0" * max(0, free - args.room_kb * 1024))
        with transaction.atomic():
            first = snapshot_create(project=project, options={}, enqueue=False)
        snapshot_build(snapshot_id=first.id)
        first.refresh_from_db()
        leftovers = [str(p.relative_to(mount)) for p in mount.rglob("*") if p.is_dir() and ("building" in p.name or p.name.startswith("v"))]
        say(f"did: {args.disk_kb} kB tmpfs as ARTIFACT_ROOT, filled to {args.room_kb} kB free, built a snapshot of {args.disk_items} items x 2 judgments")
        say(f"saw: status {first.status}; error: {first.error!r}")
        say(f"found: folders left behind: {leftovers or 'none'}")
        filler.unlink()
        with transaction.atomic():
            second = snapshot_create(project=project, options={}, enqueue=False)
        snapshot_build(snapshot_id=second.id)
        second.refresh_from_db()
        files = sorted(p.name for p in Path(second.path).rglob("*") if p.is_file()) if second.path else []
        say(f"after freeing the space: next build {second.status}, {len(files)} files")
        ok = (first.status == "failed" and "disk" in first.error.lower() and not leftovers and not first.path
              and second.status == "ready" and "manifest.json" in files)
    finally:
        settings.ARTIFACT_ROOT = saved_root
        subprocess.run(["umount", str(mount)], check=False)
    say(f"(d) {'OK' if ok else 'FAILED'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="a,b,c,d")
    parser.add_argument("--pg-port", type=int, default=5439)
    parser.add_argument("--redis-port", type=int, default=6389)
    parser.add_argument("--raters", type=int, default=50)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--kill-every", type=float, default=2.5, help="seconds between two SIGKILLs")
    parser.add_argument("--down", type=float, default=4, help="seconds PostgreSQL / Redis stay down")
    parser.add_argument("--snapshots", type=int, default=4)
    parser.add_argument("--trainings", type=int, default=2)
    parser.add_argument("--job-timeout", type=float, default=300)
    parser.add_argument("--disk-kb", type=int, default=4096)
    parser.add_argument("--room-kb", type=int, default=200)
    parser.add_argument("--disk-items", type=int, default=3000)
    args = parser.parse_args()
    runs = [r.strip() for r in args.runs.split(",") if r.strip()]

    workdir = Path(tempfile.mkdtemp(prefix="arbiter-faults-"))
    os.chmod(workdir, 0o755)
    pg = PrivatePostgres(args.pg_port, workdir / "pg")
    pg.init()
    say(f"private PostgreSQL on 127.0.0.1:{args.pg_port} ({pg.data}); work folder {workdir}")
    env = {
        **os.environ,
        "DATABASE_URL": pg.url,
        "ARBITER_DATA_DIR": str(workdir / "data"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "DB_CONN_MAX_AGE": "600",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    results = {}
    try:
        fresh_database(pg)
        django_setup(env)
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
        for run in runs:
            results[run] = {"a": run_a, "b": run_b, "c": run_c, "d": run_d}[run](args, pg, workdir, env)
            from django.db import connections

            connections.close_all()
    finally:
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001 - Django may not be set up
            pass
        pg.stop("fast")
    say("\nRESULT: " + ", ".join(f"({k}) {'OK' if v else 'FAILED'}" for k, v in results.items()))
    return 0 if results and all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
