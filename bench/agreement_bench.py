"""Agreement benchmark: seed a project with N human judgments, time the full quality computation.

    .venv/bin/python bench/agreement_bench.py                       # 100,000 binary judgments, SQLite
    .venv/bin/python bench/agreement_bench.py --kind likert --n 100000
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/x .venv/bin/python bench/agreement_bench.py

It never touches your data: ARBITER_DATA_DIR is a fresh temporary folder, and the database is a
throwaway test database (a file in that folder on SQLite, `arbiter_bench_<pid>` on PostgreSQL),
destroyed at the end. The seeded raters differ in accuracy and some favour the left card, so
the figures printed at the end are not degenerate.
Target (issue 3): agreement statistics for a 100,000-judgment project under 5 s.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("binary", "likert", "ranking", "rating")
STRENGTH = {"policy-v3": 3.0, "policy-v2": 2.0, "reference": 1.5, "baseline": 1.0}


def _value(kind: str, rng, truth: int, correct: bool, order: list[int], left_biased: bool) -> dict:
    """A rater's answer: the truth when `correct`, otherwise noise (or the left card)."""
    import numpy as np

    best = truth if correct else (order[0] if left_biased else int(rng.integers(0, len(order))))
    if kind == "binary":
        return {"winner": best} if correct or rng.random() > 0.1 else {"winner": "tie"}
    if kind == "likert":
        return {"winner": best, "strength": int(rng.integers(1, 4))}
    if kind == "ranking":
        rest = [p for p in range(len(order)) if p != best]
        rng.shuffle(rest)
        return {"ranking": [[best]] + [[p] for p in rest]}
    scores = np.clip(rng.integers(1, 5, len(order)), 1, 5)
    scores[best] = 5
    return {"scores": [int(s) for s in scores]}


def seed(project, *, n: int, raters: int, overlap: int, kind: str, seed_value: int) -> None:
    import numpy as np
    from django.contrib.auth import get_user_model

    from annotation.models import Candidate, Item, Judgment, Membership

    rng = np.random.default_rng(seed_value)
    users = get_user_model().objects.bulk_create([get_user_model()(username=f"bench-rater-{r:03d}") for r in range(raters)])
    users = list(get_user_model().objects.filter(username__startswith="bench-rater-").order_by("id"))
    Membership.objects.bulk_create([Membership(project=project, user=u) for u in users])
    accuracy = rng.uniform(0.55, 0.95, raters)
    left_biased = rng.random(raters) < 0.25
    k = project.candidates_per_item or 3
    n_items = n // overlap
    items = Item.objects.bulk_create(
        [Item(project=project, external_id=f"b-{i:07d}", prompt=f"Question {i}?", is_gold=i % 20 == 0, gold={"winner": 0} if i % 20 == 0 else None) for i in range(n_items)],
        batch_size=5000,
    )
    items = list(Item.objects.filter(project=project).order_by("id").values_list("id", flat=True))
    models = ["policy-v3", "policy-v2", "reference", "baseline"]
    Candidate.objects.bulk_create(
        [Candidate(item_id=item_id, position=p, text=f"Answer {p}", model_name=models[(i + p) % len(models)]) for i, item_id in enumerate(items) for p in range(k)],
        batch_size=10000,
    )
    # created_at is auto_now_add; the bench spreads judgments over 30 days, as a backfill would.
    Judgment._meta.get_field("created_at").auto_now_add = False
    start = datetime(2026, 1, 5, 8, 0, tzinfo=dt_timezone.utc)
    batch: list[Judgment] = []
    for i, item_id in enumerate(items):
        # The better-liked model tends to be the right answer, so the leaderboard has an order.
        weights = np.array([STRENGTH[models[(i + p) % len(models)]] for p in range(k)])
        truth = int(rng.choice(k, p=weights / weights.sum()))
        for r in rng.choice(raters, size=overlap, replace=False):
            order = [int(p) for p in rng.permutation(k)]
            correct = rng.random() < accuracy[r]
            value = _value(kind, rng, truth, correct, order, bool(left_biased[r]))
            is_gold = i % 20 == 0
            batch.append(
                Judgment(
                    project=project,
                    item_id=item_id,
                    rater=users[r],
                    kind=kind,
                    value=value,
                    display_order=order,
                    duration_ms=int(rng.gamma(4, 4000)),
                    gold_correct=(value.get("winner") == 0) if is_gold and kind in ("binary", "likert") else None,
                    created_at=start + timedelta(days=30 * i / len(items), seconds=int(r) * 7),
                )
            )
        if len(batch) >= 10000:
            Judgment.objects.bulk_create(batch, batch_size=5000)
            batch = []
    Judgment.objects.bulk_create(batch, batch_size=5000)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="judgments to seed (default 100,000)")
    parser.add_argument("--kind", choices=KINDS, default="binary")
    parser.add_argument("--raters", type=int, default=60)
    parser.add_argument("--overlap", type=int, default=5, help="raters per item")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs (the best and the first are printed)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--profile", action="store_true", help="print where the quality computation spends its time")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="arbiter-agreement-bench-"))
    os.environ["ARBITER_DATA_DIR"] = str(workdir)
    is_pg = os.environ.get("DATABASE_URL", "").startswith("postgres")
    os.environ["ARBITER_TEST_DB_NAME"] = f"arbiter_bench_{os.getpid()}" if is_pg else str(workdir / "bench.sqlite3")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))

    import django

    django.setup()
    from django.db import connection

    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        from annotation.quality.leaderboard import project_leaderboard
        from annotation.models import Judgment, Project
        from annotation.quality.figures import project_quality_compute
        from annotation.quality.plots import PLOTS, quality_plot

        project = Project.objects.create(slug="bench", name="Agreement bench", kind=args.kind, overlap=args.overlap, ranking_k=4)
        started = time.monotonic()
        seed(project, n=args.n, raters=args.raters, overlap=args.overlap, kind=args.kind, seed_value=7)
        n = Judgment.objects.filter(project=project).count()
        print(f"seeded        {n:,} {args.kind} judgments by {args.raters} raters ({args.overlap} per item) in {time.monotonic() - started:.1f} s")
        print(f"database      {connection.vendor}")

        timings: dict[str, list[float]] = {"quality (all figures)": [], "leaderboard (200 bootstraps)": [], "three SVG plots": []}
        for _ in range(args.repeat):
            t0 = time.monotonic()
            quality = project_quality_compute(project=project)
            t1 = time.monotonic()
            board = project_leaderboard(project=project)
            t2 = time.monotonic()
            for name in PLOTS:
                quality_plot(name, quality)
            t3 = time.monotonic()
            timings["quality (all figures)"].append(t1 - t0)
            timings["leaderboard (200 bootstraps)"].append(t2 - t1)
            timings["three SVG plots"].append(t3 - t2)
        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.runcall(project_quality_compute, project=project)
            profiler.runcall(project_leaderboard, project=project)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
        for name, values in timings.items():
            print(f"{name:30s} first {values[0]:.2f} s, best {min(values):.2f} s")
        totals = [sum(v[i] for v in timings.values()) for i in range(args.repeat)]
        print(f"{'total (page, uncached)':30s} first {totals[0]:.2f} s, best {min(totals):.2f} s   target < 5 s")
        s = quality["summary"]
        print(
            f"figures       alpha {s['alpha']} ({s['level']}), Fleiss {s['fleiss_kappa']}, mean Cohen {s['mean_cohen_kappa']} over {s['rater_pairs']} pairs, "
            f"consensus agreement {s['consensus_agreement']}, first card {s['first_card_share']}, {len(quality['over_time'])} days"
        )
        print("leaderboard   " + ", ".join(f"{r['model']} {r['score']:.0f} [{r['lower']:.0f}, {r['upper']:.0f}]" for r in board))
    finally:
        connection.creation.destroy_test_db(os.environ["ARBITER_TEST_DB_NAME"], verbosity=0)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
