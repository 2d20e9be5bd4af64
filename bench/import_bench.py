"""Import benchmark: generate N items as a native JSONL file, import them into a fresh project,
print items/s, wall time and peak RSS.

    .venv/bin/python bench/import_bench.py                 # 1,000,000 items, SQLite
    .venv/bin/python bench/import_bench.py --n 100000
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/x .venv/bin/python bench/import_bench.py

It never touches your data: ARBITER_DATA_DIR is a fresh temporary folder, and the database is a
throwaway test database (Django's test-database creation: a file in that folder on SQLite,
`arbiter_import_bench_<pid>` on PostgreSQL), destroyed at the end.
Target (issue 2): 1,000,000 items under 60 s with flat memory (peak RSS independent of N).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def generate(path: Path, n: int) -> None:
    words = "the model answers a question about code data training safety reward policy prompt token".split()
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            topic = " ".join(words[(i + k) % len(words)] for k in range(8))
            prompt = f"Question {i}: explain {topic}?" if i % 4 else [{"role": "user", "content": f"Question {i}: {topic}?"}]
            record = {
                "id": f"bench-{i:08d}",
                "prompt": prompt,
                "responses": [
                    {"text": f"Answer A to {i}. " + topic * 3, "model": "policy-v3"},
                    {"text": f"Answer B to {i}. " + topic[::-1] * 3, "model": "reference"},
                ],
                "metadata": {"source": "bench", "n": i},
            }
            out.write(json.dumps(record) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="items to generate (default 1,000,000)")
    parser.add_argument("--batch-size", type=int, default=None, help="ARBITER_IMPORT_BATCH_SIZE (default: the setting)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (file and SQLite database)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="arbiter-import-bench-"))
    os.environ["ARBITER_DATA_DIR"] = str(workdir)
    is_pg = os.environ.get("DATABASE_URL", "").startswith("postgres")
    os.environ["ARBITER_TEST_DB_NAME"] = f"arbiter_import_bench_{os.getpid()}" if is_pg else str(workdir / "bench.sqlite3")
    if args.batch_size:
        os.environ["ARBITER_IMPORT_BATCH_SIZE"] = str(args.batch_size)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    data = workdir / "items.jsonl"
    started = time.monotonic()
    generate(data, args.n)
    print(f"generated {args.n:,} items ({data.stat().st_size / 1e6:,.0f} MB) in {time.monotonic() - started:.1f} s")

    # A throwaway test database, migrated like production.
    try:
        connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
        from annotation.importers import import_path
        from annotation.models import Candidate, Item, Project

        project = Project.objects.create(slug="bench", name="Import bench", kind="binary")
        rss_before = rss_mb()
        cpu_before = time.process_time()
        started = time.monotonic()
        batch = import_path(project=project, path=data)
        wall = time.monotonic() - started
        cpu = time.process_time() - cpu_before
        peak = rss_mb()
        items = Item.objects.filter(project=project).count()
        candidates = Candidate.objects.filter(item__project=project).count()
        assert items == args.n and candidates == 2 * args.n, (items, candidates)
        print(f"database      {connection.vendor} (batch size {settings.ARBITER_IMPORT_BATCH_SIZE})")
        print(f"imported      {batch.items_created:,} items, {candidates:,} candidates")
        print(f"wall time     {wall:.1f} s")
        print(f"CPU time      {cpu:.1f} s of this process (the rest of the wall time: the database, other load)")
        print(f"throughput    {args.n / wall:,.0f} items/s")
        print(f"peak RSS      {peak:,.0f} MB (before the import: {rss_before:,.0f} MB)")
    finally:
        connection.creation.destroy_test_db(os.environ["ARBITER_TEST_DB_NAME"], verbosity=0)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
