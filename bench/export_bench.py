"""Benchmark: build a dataset snapshot of N binary judgments into every format.

    python bench/export_bench.py                       # SQLite in a temporary folder, N = 1,000,000
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/export_bench.py --n 200000

With DATABASE_URL, a throwaway database (arbiter_bench_<pid>) is created on that server and
dropped at the end; the URL's own database is only used to create and drop it. Judgments are
seeded with INSERT ... SELECT in the database (seconds, not minutes). Each build runs in a fresh
child process, so its peak RSS (ru_maxrss) is its own. The build runs at N/10 and at N: the peak
memory should be about the same (it must not grow with the number of judgments).
Targets (issue 3): 1,000,000 judgments under 30 s and under 500 MB peak.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
RATERS = 60


def _django():
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


# --- child: one build -------------------------------------------------------------------------
def build(slug: str, aggregation: str, card_agreement: bool) -> None:
    _django()
    import pyarrow
    import pyarrow.parquet  # noqa: F401

    from annotation.exports import snapshot_create
    from annotation.exports.build import snapshot_build
    from annotation.models import Project

    from django.conf import settings

    if not card_agreement:
        # The card's project-wide agreement figures come from the quality module, which holds
        # every judgment in memory (it is skipped above 100k judgments anyway); --card-agreement
        # includes them.
        settings.ARBITER_CARD_AGREEMENT_MAX = 0
    baseline = _rss_mb()
    project = Project.objects.get(slug=slug)
    start = time.perf_counter()
    cpu_start = resource.getrusage(resource.RUSAGE_SELF)
    snapshot = snapshot_create(project=project, options={"aggregation": aggregation, "test_share": 0.1}, enqueue=False)
    snapshot = snapshot_build(snapshot_id=snapshot.id)
    wall = time.perf_counter() - start
    cpu_end = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_end.ru_utime - cpu_start.ru_utime) + (cpu_end.ru_stime - cpu_start.ru_stime)
    if snapshot.status != "ready":
        raise SystemExit(f"build failed: {snapshot.error}")
    size = sum(meta["bytes"] for meta in snapshot.manifest["files"].values())
    print(json.dumps({
        "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "peak_rss_mb": round(_rss_mb(), 1), "baseline_rss_mb": round(baseline, 1),
        "judgments": snapshot.manifest["judgments"]["total"], "counts": snapshot.manifest["counts"], "bytes": size,
    }))


# --- parent: database, seed, children ------------------------------------------------------------
def _seed(slug: str, n_judgments: int, overlap: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from annotation.models import Project

    n_items = n_judgments // overlap
    project = Project.objects.create(slug=slug, name=f"Bench {slug}", kind="binary", overlap=overlap,
                                     instructions="Pick the **more helpful** answer.")
    User = get_user_model()
    users = [User.objects.get_or_create(username=f"bench-rater-{i}")[0] for i in range(RATERS)]
    pg = connection.vendor == "postgresql"
    seq = "generate_series(0, %(n)s - 1) AS s(g)" if pg else "(WITH RECURSIVE s(g) AS (SELECT 0 UNION ALL SELECT g + 1 FROM s WHERE g < %(n)s - 1) SELECT g FROM s) AS s"
    cat = "||"
    text = lambda expr: f"to_jsonb({expr})" if pg else f"json_quote({expr})"  # noqa: E731
    jsonb = "::jsonb" if pg else ""
    now = "now()" if pg else "datetime('now')"
    false = "false" if pg else "0"
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("CREATE TEMPORARY TABLE bench_raters (idx integer, user_id bigint)")
        cur.executemany("INSERT INTO bench_raters VALUES (%s, %s)", [(i, u.id) for i, u in enumerate(users)])
        cur.execute(
            f"""INSERT INTO annotation_item (project_id, external_id, prompt, metadata, is_gold, judgment_count, taken, priority, created_at)
            SELECT %(p)s, 'p-' {cat} s.g, {text(f"'Question number ' {cat} s.g {cat} ' about topic ' {cat} (s.g %% 97) {cat} ': how would you explain it to a new colleague?'")},
                   '{{}}'{jsonb}, {false}, {overlap}, {overlap}, 0, {now}
            FROM {seq}""",
            {"p": project.id, "n": n_items},
        )
        cur.execute(
            f"""INSERT INTO annotation_candidate (item_id, position, text, model_name, metadata)
            SELECT i.id, c.p, 'Answer ' {cat} c.p {cat} ' to question ' {cat} i.external_id {cat} ': start with the goal, then the steps, then an example that shows each step in use.',
                   'model-' {cat} c.p, '{{}}'{jsonb}
            FROM annotation_item i CROSS JOIN (SELECT 0 AS p UNION ALL SELECT 1) c WHERE i.project_id = %(p)s""",
            {"p": project.id},
        )
        winner = (
            "CASE WHEN (i.id * 31 + k.k * 17) %% 25 = 0 THEN '\"tie\"' WHEN (i.id * 31 + k.k * 17) %% 25 = 1 THEN '\"both_bad\"'"
            " WHEN (i.id * 7 + k.k * 13) %% 10 < 7 THEN '0' ELSE '1' END"
        )
        ks = " UNION ALL ".join(f"SELECT {k} AS k" for k in range(overlap))
        cur.execute(
            f"""INSERT INTO annotation_judgment (project_id, item_id, rater_id, kind, source, value, answers, display_order, duration_ms,
                   rationale, flags, client_key, ai_model, ai_template, version, created_at)
            SELECT %(p)s, i.id, r.user_id, 'binary', 'human', ('{{"winner": ' {cat} {winner} {cat} '}}'){jsonb}, '{{}}'{jsonb},
                   (CASE WHEN (i.id + k.k) %% 2 = 0 THEN '[0, 1]' ELSE '[1, 0]' END){jsonb}, 2000 + (i.id * 53 + k.k * 11) %% 9000,
                   '', '[]'{jsonb}, '', '', '', 1, {now}
            FROM annotation_item i CROSS JOIN ({ks}) k JOIN bench_raters r ON r.idx = (i.id + k.k) %% {RATERS}
            WHERE i.project_id = %(p)s""",
            {"p": project.id},
        )
        cur.execute("DROP TABLE bench_raters")
    if pg:
        with connection.cursor() as cur:
            cur.execute("ANALYZE")


def _create_tables() -> None:
    """The committed migrations: the tables production runs on."""
    from django.core.management import call_command

    call_command("migrate", verbosity=0, skip_checks=True)


def _admin_url(url: str, dbname: str) -> str:
    parts = urlparse(url)
    return urlunparse(parts._replace(path=f"/{dbname}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="judgments in the large run (the small run has n/10)")
    parser.add_argument("--overlap", type=int, default=3, help="judgments per item")
    parser.add_argument("--aggregation", default="majority", choices=["none", "majority", "dawid_skene"])
    parser.add_argument("--card-agreement", action="store_true", help="include the card's agreement statistics (quality module)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (and database) for inspection")
    parser.add_argument("--child-build", metavar="SLUG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_build:
        build(args.child_build, args.aggregation, args.card_agreement)
        return

    data_dir = Path(tempfile.mkdtemp(prefix="arbiter-bench-"))
    env = dict(os.environ, ARBITER_DATA_DIR=str(data_dir), LOG_LEVEL="WARNING")
    server_url = os.environ.get("DATABASE_URL", "")
    dbname = None
    if server_url.startswith(("postgres://", "postgresql://")):
        import psycopg

        dbname = f"arbiter_bench_{os.getpid()}"
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{dbname}"')
        env["DATABASE_URL"] = _admin_url(server_url, dbname)
    else:
        env.pop("DATABASE_URL", None)
    os.environ.update(env)
    if "DATABASE_URL" not in env:
        os.environ.pop("DATABASE_URL", None)
    try:
        _django()
        from django.db import connection

        _create_tables()
        sizes = [max(args.n // 10, args.overlap), args.n]
        print(f"database: {connection.vendor}; seeding {sizes} binary judgments ({args.overlap} per item, {RATERS} raters)...", flush=True)
        for n in sizes:
            start = time.perf_counter()
            _seed(f"bench-{n}", n, args.overlap)
            print(f"  seeded {n:>9,} judgments in {time.perf_counter() - start:6.1f} s", flush=True)
        connection.close()
        print(f"building snapshots (aggregation={args.aggregation}, every format, JSONL + Parquet):")
        results = []
        for n in sizes:
            out = subprocess.run(
                [sys.executable, __file__, "--child-build", f"bench-{n}", "--aggregation", args.aggregation]
                + (["--card-agreement"] if args.card_agreement else []),
                env=env, capture_output=True, text=True, cwd=ROOT,
            )
            if out.returncode != 0:
                raise SystemExit(out.stdout + out.stderr)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            results.append(result)
            rows = {fmt: c["train"] + c["test"] for fmt, c in result["counts"].items()}
            print(
                f"  {result['judgments']:>9,} judgments: {result['wall_s']:6.2f} s wall ({result['cpu_s']:.2f} s CPU in the build process), peak RSS {result['peak_rss_mb']:6.1f} MB"
                f" (after imports {result['baseline_rss_mb']:.1f} MB), {result['bytes'] / 1e6:.0f} MB of files, rows {rows}",
                flush=True,
            )
        small, large = results
        growth = large["peak_rss_mb"] - small["peak_rss_mb"]
        print(f"peak memory at n vs n/10: {large['peak_rss_mb']:.1f} vs {small['peak_rss_mb']:.1f} MB (+{growth:.1f} MB for 10x the judgments)")
        if args.n >= 1_000_000:
            ok = large["wall_s"] < 30 and large["peak_rss_mb"] < 500
            print(f"target (1M: < 30 s, < 500 MB): {'met' if ok else 'NOT met'}")
    finally:
        from django.db import connections

        connections.close_all()
        if dbname and not args.keep:
            import psycopg

            with psycopg.connect(server_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
        else:
            print(f"kept {data_dir}" + (f" and database {dbname}" if dbname else ""))


if __name__ == "__main__":
    main()
