"""Where the CPU of a rater's next + submit goes, in one process, without HTTP.

    .venv/bin/python bench/profile_rater.py                 # CPU per judgment, Django side only
    .venv/bin/python bench/profile_rater.py --profile 30    # plus the top 30 functions (cProfile)

The closed loop of bench/load.py is CPU-bound in the Django process; this drives the same two
calls straight through the WSGI application (no gunicorn, no sockets), so a change to the hot
path shows up as milliseconds per judgment in seconds instead of a 20-second load run; the
PostgreSQL backend's CPU (read from /proc: the server must run on this machine) shows too. Uses a
throwaway PostgreSQL database seeded like load.py's, dropped at the end.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def call(app, method: str, path: str, token: str, body: dict | None = None) -> tuple[int, dict | None]:
    payload = json.dumps(body).encode() if body is not None else b""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(payload)),
        "HTTP_AUTHORIZATION": f"Token {token}",
        "HTTP_HOST": "127.0.0.1:8000",
        "wsgi.input": io.BytesIO(payload),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    status = []
    chunks = app(environ, lambda s, h, exc=None: status.append(s))
    data = b"".join(chunks)
    if hasattr(chunks, "close"):
        chunks.close()
    return int(status[0].split()[0]), (json.loads(data) if data else None)


def judge(app, token: str) -> None:
    code, lease = call(app, "POST", "/api/projects/load/next/", token)
    assert code == 200, (code, lease)
    body = {"value": {"winner": lease["candidates"][0]["position"]}, "duration_ms": 1200, "client_key": uuid.uuid4().hex}
    code, judgment = call(app, "POST", f"/api/assignments/{lease['assignment']}/submit/", token, body)
    assert code == 201, (code, judgment)


def backend_cpu(pid: int) -> float:
    """CPU seconds the PostgreSQL backend serving this process has used (it runs on this machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--judgments", type=int, default=1500)
    parser.add_argument("--profile", type=int, default=0, help="print this many top functions by own time")
    args = parser.parse_args()

    db_name = f"arbiter_profile_{os.getpid()}"
    os.environ.update(
        DATABASE_URL=args.pg.rsplit("/", 1)[0] + "/" + db_name,
        ARBITER_DATA_DIR=tempfile.mkdtemp(prefix="arbiter-profile-"),
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="0",
        LOG_LEVEL="WARNING",
        DB_CONN_MAX_AGE="600",
    )
    import load  # bench/load.py: the same database set-up and seed

    load.admin_sql(args.pg, f'CREATE DATABASE "{db_name}"')
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.core.wsgi import get_wsgi_application
        from django.db import connection, connections

        call_command("migrate", verbosity=0, interactive=False)
        raters = 50
        _, tokens = load.seed(n_items=max(20_000, args.judgments), n_raters=raters, overlap=2)
        app = get_wsgi_application()
        for i in range(100):  # warm-up: imports, URL resolver, connection
            judge(app, tokens[i % raters])
        # CPU time, not wall: waiting on PostgreSQL is not what this measures.
        profiler = cProfile.Profile(time.process_time) if args.profile else None
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend = cursor.fetchone()[0]
        pg = backend_cpu(backend)
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        for i in range(args.judgments):
            judge(app, tokens[i % raters])
        if profiler:
            profiler.disable()
        cpu, wall, pg = time.process_time() - cpu, time.perf_counter() - wall, backend_cpu(backend) - pg
        print(f"{args.judgments} judgments: {cpu / args.judgments * 1000:.2f} ms CPU per next + submit in this process, "
              f"{pg / args.judgments * 1000:.2f} ms in its PostgreSQL backend "
              f"({wall / args.judgments * 1000:.2f} ms wall, database round trips included){' (under cProfile)' if profiler else ''}")
        if profiler:
            pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.profile)
        connections.close_all()
        return 0
    finally:
        load.admin_sql(args.pg, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
