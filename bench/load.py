"""Load benchmark: simulated raters over HTTP against gunicorn + PostgreSQL on this machine.

    .venv/bin/python bench/load.py                          # 20,000 items: closed then open loop
    .venv/bin/python bench/load.py --items 1000000 --modes open
    .venv/bin/python bench/load.py --raters 50 --duration 20 --rate 60

What it does, all bounded in time:
1. creates a throwaway PostgreSQL database `arbiter_load_<pid>` on --pg (dropped at the end),
   builds the tables (`manage.py migrate --run-syncdb`: migrations where they exist, the models
   otherwise), seeds one binary project (overlap 2) with --items items server-side
   (INSERT ... SELECT generate_series: a million items in seconds) and one account with an API
   token per simulated rater, then VACUUM ANALYZE;
2. prints EXPLAIN ANALYZE of the next-item query (it must be an index range scan);
3. starts gunicorn (config.wsgi, --workers x --threads) with DATABASE_URL pointing there;
4. closed loop: --raters threads, each its own account and keep-alive connection, looping
   POST next -> POST submit with no think time for --duration seconds (the most it takes);
5. open loop: arrivals scheduled at a fixed --rate per second for --duration seconds, each a
   rater session (next, then submit) on a free account. Latency of `next` counts from the
   scheduled arrival, so a server (or client) that falls behind shows in p99 instead of hiding
   (no coordinated omission);
6. verifies in the database that every acknowledged judgment is stored, that no item has more
   judgments than its overlap and that no item was leased beyond it (no double assignment);
7. kills gunicorn and drops the database.
Targets (issue 2, this 2-core machine, load generator included): closed 50 raters >= 150
judgments/s; open 60/s with p99 < 100 ms for both calls, also with 1,000,000 items.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summary(name: str, ms: list[float]) -> str:
    return f"{name:7s} n={len(ms):6d}  p50={pct(ms, 50):6.1f} ms  p95={pct(ms, 95):6.1f} ms  p99={pct(ms, 99):6.1f} ms  max={max(ms or [0]):6.1f} ms"


# --- database --------------------------------------------------------------------------------

def admin_sql(base_url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(base_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(sql)


def seed(*, n_items: int, n_raters: int, overlap: int) -> tuple[int, list[str]]:
    """The project, and one token per rater. Runs inside this process's Django."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from annotation.models import Membership, Project, Role

    project = Project.objects.create(slug="load", name="Load", kind="binary", overlap=overlap, lease_seconds=600)
    started = time.monotonic()
    with connection.cursor() as cur:
        # Server-side generation: no rows travel from Python, so a million items take seconds.
        cur.execute(
            """INSERT INTO annotation_item (project_id, external_id, prompt, metadata, is_gold, judgment_count, taken, priority, created_at)
               SELECT %s, 'load-' || i, to_jsonb('Question ' || i || ': how do I reverse a list in Python?'),
                      '{}'::jsonb, false, 0, 0, 0.0, now()
               FROM generate_series(1, %s) AS i""",
            [project.id, n_items],
        )
        cur.execute(
            """INSERT INTO annotation_candidate (item_id, position, text, model_name, metadata)
               SELECT it.id, p, 'Answer ' || p || ': use `xs[::-1]` or `reversed(xs)`; item ' || it.external_id,
                      'model-' || p, '{}'::jsonb
               FROM annotation_item it CROSS JOIN generate_series(0, 1) AS p WHERE it.project_id = %s""",
            [project.id],
        )
    print(f"seeded {n_items:,} items with 2 candidates each in {time.monotonic() - started:.1f} s")
    User = get_user_model()
    User.objects.bulk_create([User(username=f"load{i:04d}", password="!") for i in range(n_raters)])
    users = list(User.objects.filter(username__startswith="load").order_by("id"))
    Membership.objects.bulk_create([Membership(project=project, user=u, role=Role.RATER) for u in users])
    tokens = [Token(key=Token.generate_key(), user=u) for u in users]
    Token.objects.bulk_create(tokens)
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
        # Flush the seed's dirty pages now, so the checkpoint of a million inserted rows does
        # not land in the middle of the measurement.
        cur.execute("CHECKPOINT")
    return project.id, [t.key for t in tokens]


def explain_next(project_id: int) -> str:
    """EXPLAIN ANALYZE of the statement that claims a slot, run in a transaction that is
    rolled back (the claim really executes, then is undone)."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from annotation.assignment import _claim_sql
    from annotation.models import Project

    project = Project.objects.get(id=project_id)
    rater = get_user_model().objects.filter(username__startswith="load").first()
    sql, params = _claim_sql(project=project, rater=rater, gold=False, skip_locked=True)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        plan = "\n".join(row[0] for row in cur.fetchall())
        transaction.set_rollback(True)
    return plan


# What the priority column holds under each next-item order (annotation/selection.py): 0, a
# random number, or a reward model's margin (simulated: one decimal, so many items tie).
PRIORITIES = {"fewest": "0.0", "random": "random()", "uncertain": "round((random() * 10)::numeric) / 10.0"}


def explain_orders(project_id: int) -> None:
    """The claim's plan under every next-item order, on the same items: it must stay an index
    range scan on item_next_idx with LIMIT 1 (no Sort, no Seq Scan) whatever the priorities hold."""
    from django.db import connection

    from annotation.models import Project

    for order, value in PRIORITIES.items():
        Project.objects.filter(id=project_id).update(selection=order)
        started = time.monotonic()
        with connection.cursor() as cur:
            cur.execute(f"UPDATE annotation_item SET priority = {value} WHERE project_id = %s", [project_id])
            cur.execute("VACUUM ANALYZE annotation_item")
        plan = explain_next(project_id)
        scan_ok = "Index Scan using item_next_idx" in plan and "Seq Scan on annotation_item" not in plan and "Sort" not in plan
        print(f"\nnext-item plan, order '{order}' (priorities set in {time.monotonic() - started:.1f} s): {'index range scan' if scan_ok else 'NOT AN INDEX RANGE SCAN'}")
        print("  " + plan.replace("\n", "\n  "))


def verify(project_id: int, acknowledged: set[int], overlap: int) -> dict:
    from django.db import connection

    with connection.cursor() as cur:
        lost = 0
        ids = sorted(acknowledged)
        for start in range(0, len(ids), 5000):
            chunk = ids[start : start + 5000]
            cur.execute("SELECT count(*) FROM annotation_judgment WHERE id = ANY(%s)", [chunk])
            lost += len(chunk) - cur.fetchone()[0]
        cur.execute(
            "SELECT count(*) FROM (SELECT item_id FROM annotation_judgment WHERE project_id = %s GROUP BY item_id HAVING count(*) > %s) x",
            [project_id, overlap],
        )
        over_overlap = cur.fetchone()[0]
        cur.execute(
            """SELECT count(*) FROM (SELECT item_id FROM annotation_assignment WHERE project_id = %s
               AND status IN ('active', 'submitted') GROUP BY item_id HAVING count(*) > %s) x""",
            [project_id, overlap],
        )
        double_assigned = cur.fetchone()[0]
        cur.execute(
            "SELECT count(*) FROM (SELECT item_id, rater_id FROM annotation_assignment GROUP BY 1, 2 HAVING count(*) > 1) x"
        )
        same_rater_twice = cur.fetchone()[0]
        cur.execute(
            """SELECT count(*) FROM annotation_item it WHERE it.project_id = %s AND it.judgment_count <>
               (SELECT count(*) FROM annotation_judgment j WHERE j.item_id = it.id)
               AND it.id IN (SELECT item_id FROM annotation_judgment WHERE project_id = %s)""",
            [project_id, project_id],
        )
        counter_drift = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM annotation_judgment WHERE project_id = %s", [project_id])
        stored = cur.fetchone()[0]
    return {
        "acknowledged": len(acknowledged),
        "stored": stored,
        "lost": lost,
        "items_over_overlap": over_overlap,
        "double_assignments": double_assigned,
        "same_rater_twice": same_rater_twice,
        "counter_drift": counter_drift,
    }


# --- server ----------------------------------------------------------------------------------

def start_server(*, port: int, workers: int, threads: int, env: dict, log: Path, worker_class: str = "sync") -> subprocess.Popen:
    cmd = [
        str(Path(PY).parent / "gunicorn"), "config.wsgi", "-k", worker_class,
        "-w", str(workers), "--threads", str(threads), "-b", f"127.0.0.1:{port}",
        "--keep-alive", "30", "--backlog", "2048", "--log-level", "warning", "--timeout", "60",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited with {proc.returncode}; see {log}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/accounts/login/")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.3)
    stop_server(proc)
    raise SystemExit(f"gunicorn did not answer within 60 s; see {log}")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


# --- CPU accounting ----------------------------------------------------------------------------
# On a shared machine wall-clock rates say as much about the neighbours as about Arbiter, so
# the bench also counts the CPU seconds each party spent: gunicorn (master and workers), the
# PostgreSQL backends serving the bench database, and this process (the load generator).

TICK = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0.0


def _children(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            pass
    return kids


def cpu_snapshot(server: subprocess.Popen, db_name: str, base_url: str) -> dict[str, dict[int, float]]:
    import psycopg

    with psycopg.connect(base_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        pg_pids = [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [db_name])]
    server_pids = [server.pid, *_children(server.pid)]
    return {
        "gunicorn": {p: _proc_cpu(p) for p in server_pids},
        "postgres": {p: _proc_cpu(p) for p in pg_pids},
        "loadgen": {0: sum(os.times()[:2])},
    }


def cpu_spent(before: dict, after: dict) -> dict[str, float]:
    return {k: sum(v - before[k].get(p, 0.0) for p, v in after[k].items()) for k in after}


def machine_busy() -> tuple[float, float, float]:
    """(busy, total, steal) jiffies of the whole machine, from /proc/stat. Steal is time the
    hypervisor gave our virtual CPUs to someone else: it makes the same work look slower."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values), values[7]


def reference_loop() -> float:
    """CPU seconds of a fixed pure-Python loop: this machine's speed right now. The same
    virtual machine ran it anywhere from 1.2 to 1.7 s within an hour, so compare load
    figures only between runs whose reference is close, or as ratios measured side by side."""
    started = time.process_time()
    total = 0
    for i in range(5_000_000):
        total += i
    return 2 * (time.process_time() - started)


def cpu_report(spent: dict[str, float], judgments: int, busy: tuple[float, float]) -> None:
    if not judgments:
        return
    per = {k: v * 1000 / judgments for k, v in spent.items()}
    total = sum(per.values())
    others = max(0.0, (busy[0] - busy[2]) / TICK - sum(spent.values()))
    print(
        "  CPU per judgment (next + submit): "
        + ", ".join(f"{k} {v:.1f} ms" for k, v in per.items())
        + f"; total {total:.1f} ms -> {os.cpu_count()} idle cores would sustain about {os.cpu_count() * 1000 / total:.0f} judgments/s"
    )
    print(
        f"  the machine was {100 * busy[0] / busy[1]:.0f}% busy; other processes used {others:.1f} CPU-s of it during this run,"
        f" the hypervisor took {busy[2] / TICK:.1f} CPU-s (steal)"
    )


# --- client ----------------------------------------------------------------------------------

class Rater:
    """One account on one keep-alive connection."""

    def __init__(self, port: int, token: str, slug: str):
        self.port, self.slug = port, slug
        self.head = f"Host: 127.0.0.1:{port}\r\nAuthorization: Token {token}\r\nContent-Type: application/json\r\n"
        self.sock: socket.socket | None = None
        self.buffer = b""

    # A minimal HTTP/1.1 client on a raw socket. The load generator shares the two cores with
    # the server it measures, and http.client parses every response's headers with the email
    # package: it cost the generator about twice the CPU per judgment of this.
    def _connect(self) -> None:
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def _disconnect(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buffer = None, b""

    def _receive(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        return chunk

    def _response(self) -> tuple[int, bytes, bool]:
        """(status, body, whether the server closes the connection after it)."""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._receive()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = dict(line.split(":", 1) for line in lines[1:])
        headers = {k.strip().lower(): v.strip().lower() for k, v in headers.items()}
        closes = headers.get("connection") == "close"
        if "content-length" in headers:
            length = int(headers["content-length"])
        elif status in (204, 304):
            length = 0
        else:  # no length: the body runs to the end of the connection
            while True:
                try:
                    self.buffer += self._receive()
                except ConnectionError:
                    break
            length, closes = len(self.buffer), True
        while len(self.buffer) < length:
            self.buffer += self._receive()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, body, closes

    def _call(self, path: str, body: dict | None) -> tuple[int, dict | None]:
        payload = json.dumps(body).encode() if body is not None else b""
        request = f"POST {path} HTTP/1.1\r\n{self.head}Content-Length: {len(payload)}\r\n\r\n".encode() + payload
        for attempt in (1, 2):
            try:
                if self.sock is None:
                    self._connect()
                self.sock.sendall(request)
                status, data, closes = self._response()
                if closes:  # gunicorn's sync workers close after every response
                    self._disconnect()
                return status, (json.loads(data) if data else None)
            except (OSError, ValueError, IndexError):
                # The server closed an idle keep-alive connection: reconnect once. Both calls are
                # safe to repeat (next returns the open lease; submit carries a client key).
                self._disconnect()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def session(self, stats: "Stats", started: float | None = None) -> bool:
        """next then submit; False when nothing is left. `started` is the scheduled arrival."""
        t0 = time.perf_counter()
        status, lease = self._call(f"/api/projects/{self.slug}/next/", None)
        t1 = time.perf_counter()
        stats.add("next", (t1 - (started if started is not None else t0)) * 1000, status)
        if status == 204:
            return False
        if status != 200:
            return True
        winner = lease["candidates"][0]["position"]
        body = {"value": {"winner": winner}, "duration_ms": 1200, "client_key": uuid.uuid4().hex}
        status, judgment = self._call(f"/api/assignments/{lease['assignment']}/submit/", body)
        stats.add("submit", (time.perf_counter() - t1) * 1000, status)
        if status in (200, 201):
            stats.ack(judgment["id"])
        return True


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.ms: dict[str, list[float]] = {"next": [], "submit": []}
        self.statuses: dict[str, dict[int, int]] = {"next": {}, "submit": {}}
        self.acknowledged: set[int] = set()
        self.errors: list[str] = []

    def add(self, call: str, ms: float, status: int) -> None:
        with self.lock:
            self.ms[call].append(ms)
            self.statuses[call][status] = self.statuses[call].get(status, 0) + 1

    def ack(self, judgment_id: int) -> None:
        with self.lock:
            self.acknowledged.add(judgment_id)

    def error(self, message: str) -> None:
        with self.lock:
            self.errors.append(message)

    def report(self, title: str, seconds: float) -> None:
        rate = len(self.ms["submit"]) / seconds if seconds else 0
        print(f"\n== {title}: {len(self.acknowledged):,} judgments acknowledged in {seconds:.1f} s = {rate:.1f} judgments/s")
        for call in ("next", "submit"):
            print("  " + summary(call, self.ms[call]) + f"  statuses={self.statuses[call]}")
        if self.errors:
            print(f"  client errors: {len(self.errors)} (first: {self.errors[0]})")


def closed_loop(*, port: int, tokens: list[str], seconds: float) -> tuple[Stats, float]:
    stats = Stats()
    deadline = time.monotonic() + seconds

    def run(token: str) -> None:
        rater = Rater(port, token, "load")
        try:
            while time.monotonic() < deadline and rater.session(stats):
                pass
        except Exception as exc:  # noqa: BLE001 - reported in the summary
            stats.error(repr(exc))

    started = time.monotonic()
    threads = [threading.Thread(target=run, args=(t,), daemon=True) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 60)
    return stats, time.monotonic() - started


def open_loop(*, port: int, tokens: list[str], rate: float, seconds: float, pool: int = 48) -> tuple[Stats, float]:
    """Arrivals at a fixed rate; each takes a free account (a rater has one session at a time)."""
    stats = Stats()
    arrivals: queue.Queue = queue.Queue()
    free: queue.Queue = queue.Queue()
    for token in tokens:
        free.put(Rater(port, token, "load"))
    late = [0]

    def worker() -> None:
        while True:
            scheduled = arrivals.get()
            if scheduled is None:
                return
            if time.perf_counter() - scheduled > 0.010:
                late[0] += 1
            rater = free.get()
            try:
                rater.session(stats, started=scheduled)
            except Exception as exc:  # noqa: BLE001
                stats.error(repr(exc))
            free.put(rater)

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(pool)]
    for w in workers:
        w.start()
    t0 = time.perf_counter()
    n = int(rate * seconds)
    for i in range(n):
        at = t0 + i / rate
        delay = at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        arrivals.put(at)
    for _ in workers:
        arrivals.put(None)
    for w in workers:
        w.join(timeout=60)
    elapsed = time.perf_counter() - t0
    if late[0]:
        print(f"  ({late[0]} arrivals started more than 10 ms late: their wait is in the next-call latency)")
    return stats, elapsed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432/postgres", help="a PostgreSQL server to create the throwaway database on")
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--overlap", type=int, default=2)
    parser.add_argument("--raters", type=int, default=50, help="closed-loop raters")
    parser.add_argument("--open-raters", type=int, default=300, help="accounts the open loop draws from")
    parser.add_argument("--duration", type=float, default=20, help="seconds per mode")
    parser.add_argument("--rate", type=float, default=60, help="open-loop judgments per second")
    parser.add_argument("--modes", default="closed,open", help="closed, open, and/or explain (the claim's plan under every next-item order, no load)")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn processes: on 2 cores 3 sync workers beat 2, 4 and 6 (fewer context switches, no idle core while one waits on PostgreSQL)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--worker-class", default="sync", help="gunicorn -k: sync closes the connection after each response; gthread keeps it alive")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]

    db_name = f"arbiter_load_{os.getpid()}"
    database_url = args.pg.rsplit("/", 1)[0] + "/" + db_name
    workdir = Path(tempfile.mkdtemp(prefix="arbiter-load-"))
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ARBITER_DATA_DIR": str(workdir),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "DB_CONN_MAX_AGE": "600",
    }
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))

    admin_sql(args.pg, f'CREATE DATABASE "{db_name}"')
    server = None
    try:
        t = time.monotonic()
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0, interactive=False)
        print(f"database {db_name}: migrated in {time.monotonic() - t:.1f} s")

        project_id, tokens = seed(n_items=args.items, n_raters=args.raters + args.open_raters, overlap=args.overlap)
        print("\nnext-item query plan (EXPLAIN ANALYZE, fresh project):")
        print("  " + explain_next(project_id).replace("\n", "\n  "))
        if "explain" in modes:
            explain_orders(project_id)
            if not {"closed", "open"} & set(modes):
                connection.close()
                return 0
        connection.close()

        port = free_port()
        server = start_server(port=port, workers=args.workers, threads=args.threads, env=env, log=workdir / "gunicorn.log", worker_class=args.worker_class)
        print(f"\nreference loop: {reference_loop():.2f} CPU-s (this machine's speed now; smaller is faster)")
        print(f"gunicorn on 127.0.0.1:{port}: {args.worker_class}, {args.workers} workers x {args.threads} threads; {os.cpu_count()} CPUs, load generator included")
        acknowledged: set[int] = set()
        results = {}
        # Warm-up, not measured: every worker process and thread imports, resolves URLs and
        # opens its database connection on its first requests.
        warm, _ = closed_loop(port=port, tokens=tokens[-args.workers * args.threads :], seconds=3)
        acknowledged |= warm.acknowledged
        print(f"warm-up: {len(warm.acknowledged)} judgments in 3 s (not measured)")
        def measured(run):
            before, busy0 = cpu_snapshot(server, db_name, args.pg), machine_busy()
            stats, secs = run()
            after, busy1 = cpu_snapshot(server, db_name, args.pg), machine_busy()
            return stats, secs, cpu_spent(before, after), tuple(b - a for a, b in zip(busy0, busy1))

        if "closed" in modes:
            stats, secs, spent, busy = measured(lambda: closed_loop(port=port, tokens=tokens[: args.raters], seconds=args.duration))
            stats.report(f"closed loop, {args.raters} raters, no think time", secs)
            cpu_report(spent, len(stats.ms["submit"]), busy)
            acknowledged |= stats.acknowledged
            results["closed"] = len(stats.ms["submit"]) / secs
        if "open" in modes:
            stats, secs, spent, busy = measured(
                lambda: open_loop(port=port, tokens=tokens[args.raters :], rate=args.rate, seconds=args.duration)
            )
            stats.report(f"open loop, {args.rate:g} arrivals/s offered, {args.items:,} items", secs)
            cpu_report(spent, len(stats.ms["submit"]), busy)
            acknowledged |= stats.acknowledged
            results["open_p99_next"] = pct(stats.ms["next"], 99)
            results["open_p99_submit"] = pct(stats.ms["submit"], 99)
        stop_server(server)
        server = None
        print(f"reference loop after the run: {reference_loop():.2f} CPU-s")

        print("\nnext-item query plan after the run:")
        print("  " + explain_next(project_id).replace("\n", "\n  "))
        check = verify(project_id, acknowledged, args.overlap)
        print("\nverification:", json.dumps(check))
        ok = check["lost"] == 0 and check["items_over_overlap"] == 0 and check["double_assignments"] == 0 and check["same_rater_twice"] == 0
        print("RESULT:", "OK" if ok else "FAILED", json.dumps({k: round(v, 1) for k, v in results.items()}))
        connection.close()
        return 0 if ok else 1
    finally:
        if server is not None:
            stop_server(server)
        if not args.keep_db:
            try:
                from django.db import connections

                connections.close_all()
            except Exception:  # noqa: BLE001 - Django may not be set up yet
                pass
            admin_sql(args.pg, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
