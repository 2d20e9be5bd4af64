"""Throw every hostile input class of issue 18 at every write route, as every role, and count the
server errors and the wrong acceptances.

    .venv/bin/python bench/probe_hostile.py [--fast] [--verbose] [--roles manager,outsider]
    .venv/bin/python bench/probe_hostile.py --snapshot-matrix
    .venv/bin/python bench/probe_hostile.py --reads      # the read pass alone

The read pass (on by default, --no-reads to skip): every route GET as every role, with its real ids
and with ids past 64 bits, with and without odd query strings (bad cursors, a page past 64 bits, an
unknown format) and as a browser (Accept: text/html): counts the 5xx.

The classes, the world and the judge live in bench/hostile_cases.py (shared with the suite's fast
form, tests/test_probe_hostile.py). Every URL pattern of the URLconf is tried with POST, PUT,
PATCH and DELETE as the manager, the rater, the researcher, an outsider, staff, nobody and a
manager of another project; a role and method the route refuses outright (401/403/404/405) is
counted once and not sent the cases. Each case replaces one field of the route's valid baseline
body (JSON, and on the HTML routes the same as a form), in a transaction rolled back afterwards.

Prints a totals table per class: requests, 5xx, and WRONG ACCEPTANCES (2xx/3xx and a written row
holds the hostile value); exits 1 if there are any.

--snapshot-matrix prints, for the snapshot demo v1 that also holds project bee, each route that
serves it (API and browser: files, archive, card, rows, run results, samples, job results) against
A's researcher, A's manager, B's manager and a user who reads both: the status codes.

It runs on a throwaway SQLite database in a temporary ARBITER_DATA_DIR; Celery tasks are only
queued (memory broker), never run.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["ARBITER_DATA_DIR"] = tempfile.mkdtemp(prefix="arbiter-probe-")
os.environ["CELERY_BROKER_URL"] = "memory://"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from bench import hostile_cases  # noqa: E402


def snapshot_matrix(users: dict, ids: dict) -> str:
    """Status codes of every snapshot route for the four roles of issue 18."""
    from django.contrib.auth import get_user_model

    from annotation.models import DatasetSnapshot, Membership, Project, Role
    from training.loop.models import Job
    from training.models import ModelArtifact, TrainingRun

    User = get_user_model()
    amanager = User.objects.create_user("amanager", "amanager@example.org", "correct-horse-battery")
    Membership.objects.create(project=Project.objects.get(slug="demo"), user=amanager, role=Role.MANAGER)
    snapshot = DatasetSnapshot.objects.get(pk=ids["snapshot"])
    run = TrainingRun.objects.create(project=snapshot.project, snapshot=snapshot, base_model=ModelArtifact.objects.get(name="smol"),
                                     method="dpo", status="succeeded", result={"test": {"accuracy": 0.75}, "samples": [{"prompt": "Q"}]})
    job = Job.objects.create(kind=Job.Kind.EVALUATION, policy=ModelArtifact.objects.get(name="policy"), project=snapshot.project,
                             status="succeeded", params={"prompts": {"snapshot": snapshot.pk, "split": "test"}},
                             result={"n": 1, "win_rate": 1.0, "samples": [{"prompt": "Q", "policy": "p", "reference": "r"}]})
    roles = {"A researcher": users["researcher"], "A manager": amanager, "B manager": users["other manager"], "reads both": users["manager"]}
    v = snapshot.version
    rows = [("page", "list", "/projects/demo/datasets/"), ("page", "card", f"/projects/demo/datasets/v{v}/"),
            ("page", "status", f"/projects/demo/datasets/v{v}/status.json"), ("page", "archive", f"/projects/demo/datasets/v{v}/download/")]
    rows += [("page", f"file {name}", f"/projects/demo/datasets/v{v}/files/{name}") for name in ["manifest.json", *snapshot.manifest["files"]]]
    rows += [("api", "list", "/api/projects/demo/datasets/"), ("api", "rows+card", f"/api/projects/demo/datasets/{v}/"),
             ("api", "archive", f"/api/projects/demo/datasets/{v}/archive/")]
    rows += [("api", f"file {name}", f"/api/projects/demo/datasets/{v}/files/{name}") for name in ["manifest.json", *snapshot.manifest["files"]]]
    rows += [("page", "run results", f"/training/runs/{run.pk}/"), ("page", "run samples", f"/training/runs/{run.pk}/samples/"),
             ("api", "run results", f"/api/training/runs/{run.pk}/"), ("page", "job results", f"/training/jobs/{job.pk}/"),
             ("api", "job results", f"/api/training/jobs/{job.pk}/")]
    clients = hostile_cases.clients(roles)
    out = [f"{'':6} {'route':<34} " + " ".join(f"{r:>12}" for r in roles)]
    for kind, what, url in rows:
        codes = []
        for role in roles:
            response = clients[role].get(url)
            body = b"".join(response.streaming_content) if response.streaming else response.content
            code = str(response.status_code)
            # A 200 that withholds the results says so: the run page marks it, the job page then has no
            # win rate, the API answers a null or empty result.
            if response.status_code == 200 and "results" in what:
                if kind == "api":
                    hidden = response.json().get("result") in (None, {})
                elif "run" in what:
                    hidden = b"data-results-hidden" in body
                else:
                    hidden = b"data-win-rate" not in body
                code += " hidden" if hidden else " shown"
            codes.append(f"{code:>12}")
        out.append(f"{kind:6} {what:<34} " + " ".join(codes))
    return "\n".join(out)


HUGE = str(2**64 + 1)
ODD_QUERY = "?cursor=%ff%fe&all=1&gold=1&page=99999999999999999999&format=xml"


def read_pass(users: dict, ids: dict, roles: list[str]) -> int:
    """GET every route as every role: real ids and ids past 64 bits, odd query strings, as a
    browser. Prints each route that answered 5xx and the totals; returns the count of 5xx."""
    import re
    from collections import Counter

    from django.db import transaction

    huge_ids = {k: (HUGE if isinstance(v, int) else v) for k, v in ids.items()}
    sent, errors, start = 0, Counter(), time.monotonic()
    for template in hostile_cases.routes():
        real = hostile_cases.fill(template, ids)
        huge = "/" + re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: HUGE if m.group(1) in ("int", "id") else str(huge_ids.get(m.group(2), "x")), template)
        # Fresh sessions per route: a GET of /accounts/logout/ ends the client's session.
        for role, client in hostile_cases.clients({r: users[r] for r in roles if r in users}).items():
            for url in {real, huge}:
                for query, accept in (("", "application/json"), (ODD_QUERY, "application/json"), ("", "text/html")):
                    with transaction.atomic():
                        response = client.get(url + query, HTTP_ACCEPT=accept)
                        transaction.set_rollback(True)
                    sent += 1
                    if response.status_code >= 500:
                        errors[f"GET /{template} [{'query' if query else accept}] as {role}"] += 1
    for key, count in sorted(errors.items()):
        print(f"5xx x{count:<3} {key}")
    print(f"read pass: {sent} GET requests, {sum(errors.values())} server errors ({time.monotonic() - start:.0f} s)\n")
    return sum(errors.values())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fast", action="store_true", help="the suite's reduced cases (100 kB strings, a few fields per class)")
    parser.add_argument("--roles", default=",".join(hostile_cases.ROLES))
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--snapshot-matrix", action="store_true")
    parser.add_argument("--reads", action="store_true", help="only the read pass")
    parser.add_argument("--no-reads", action="store_true", help="skip the read pass")
    args = parser.parse_args()

    logging.disable(logging.CRITICAL)  # every 500 would print its traceback
    call_command("migrate", verbosity=0)
    users, ids = hostile_cases.world()
    if args.snapshot_matrix:
        print(snapshot_matrix(users, ids))
        return 0
    if not args.no_reads:
        failures = read_pass(users, ids, [r for r in args.roles.split(",") if r])
        if args.reads:
            return 1 if failures else 0
    cases = hostile_cases.cases(fast=args.fast)
    start = time.monotonic()
    probe = hostile_cases.Probe(users=users, ids=ids, cases=cases, roles=[r for r in args.roles.split(",") if r])

    def progress(template: str) -> None:
        # Running totals before each route: a run cut short still says what it covered.
        hostile = [t for c, t in probe.totals.items() if c != "baseline"]
        print(f"{time.monotonic() - start:6.0f}s  {sum(t.requests for t in hostile):>7} requests {sum(t.errors for t in hostile):>4} 5xx "
              f"{sum(t.wrong for t in hostile):>4} wrong  next: /{template}", flush=True)

    probe.on_route = progress if args.verbose else None
    probe.run()
    for finding, statuses in sorted(probe.findings.items()):
        print(f"x{len(statuses):<3} {finding}  (status {', '.join(sorted(set(statuses)))})")
    print(f"\n{len(probe.probed)} write routes took a body from some role ({sum(map(len, probe.probed.values()))} route/method pairs); "
          f"{len(cases)} cases; {time.monotonic() - start:.0f} s\n")
    print(probe.table())
    return 1 if probe.failures else 0


if __name__ == "__main__":
    sys.exit(main())
