"""Throw hostile and careless input at every route, as every role, and count the server errors.

    .venv/bin/python bench/probe_hostile.py [--verbose]

Every URL pattern of the URLconf is resolved with real ids (the caller's own assignment, the
project's items, imports, snapshots, runs, models) and with hostile ones (past 64 bits), and
each is sent GET with odd query strings and POST/PUT/PATCH with hostile bodies: nesting 100,000
levels deep, lone surrogates in every known field, floats where integers belong, numbers past
every range, megabyte strings, NaN, bodies that are not JSON or not an object, as the manager,
the rater, the researcher, an outsider, staff and nobody. Each request runs in a transaction
that is rolled back, so one request's success cannot hide the next one's failure.

It runs on a throwaway SQLite database in a temporary ARBITER_DATA_DIR; Celery tasks are only
queued (memory broker), never run. Prints each route and input that gave a 5xx, and the totals.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["ARBITER_DATA_DIR"] = tempfile.mkdtemp(prefix="arbiter-probe-")
os.environ["CELERY_BROKER_URL"] = "memory://"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import URLPattern, URLResolver, get_resolver  # noqa: E402

HUGE = "99999999999999999999999"
DEEP = "[" * 100_000 + "]" * 100_000
SURROGATE = '"\\ud800"'
FIELDS = [
    "value", "rationale", "flags", "client_key", "duration_ms", "items", "name", "slug", "instructions", "kind",
    "likert_points", "likert_labels", "ranking_k", "rating_min", "rating_max", "rating_threshold", "rating_labels",
    "overlap", "lease_seconds", "gold_rate", "gold_pause_threshold", "gold_min_answers", "username", "role", "paused",
    "format", "as_judgments", "threshold", "min_answers", "action", "config", "method", "base_model", "snapshot",
    "prompts", "texts", "split", "formats", "include_paused", "raters", "researchers", "winner", "scores",
]


def hostile_bodies() -> list[tuple[str, str]]:
    """(label, raw JSON body)."""
    bodies = [
        ("deep value", '{"value": ' + DEEP + "}"),
        ("deep root", DEEP),
        ("not json", "{not json"),
        ("json list", "[1, 2, 3]"),
        ("json string", '"hello"'),
        ("NaN", '{"value": NaN, "gold_rate": NaN}'),
        ("empty", ""),
        ("float winner", '{"value": {"winner": 1.0}}'),
        ("huge winner", '{"value": {"winner": 100000000000000000000000000}}'),
        ("megabyte strings", json.dumps({f: "x" * 1_000_000 for f in ("value", "rationale", "client_key", "name", "instructions")})),
    ]
    for field in FIELDS:
        bodies.append((f"surrogate {field}", "{" + f'"{field}": [{SURROGATE}], "value": {{"winner": 0}}, "x": {SURROGATE}' + "}"))
        bodies.append((f"huge {field}", "{" + f'"{field}": 1000000000000000000000000000000' + "}"))
        bodies.append((f"float {field}", "{" + f'"{field}": 1e308' + "}"))
    return bodies


def routes(resolver=None, prefix: str = "") -> list[tuple[str, object]]:
    """(route template, pattern) of every endpoint, e.g. 'api/assignments/<id:assignment_id>/submit/'."""
    resolver = resolver or get_resolver()
    out = []
    for p in resolver.url_patterns:
        text = str(p.pattern)
        if isinstance(p, URLResolver):
            out.extend(routes(p, prefix + text))
        elif isinstance(p, URLPattern):
            out.append((prefix + text, p))
    return out


def seed():
    from annotation.kinds import Kind
    from annotation.models import Assignment, Candidate, DatasetSnapshot, ImportBatch, Item, Membership, Project, Role

    User = get_user_model()
    users = {name: User.objects.create_user(name, f"{name}@example.org", "correct-horse-battery") for name in ("owner", "member", "researcher", "outsider")}
    users["staff"] = User.objects.create_superuser("staff", "staff@example.org", "correct-horse-battery")
    project = Project.objects.create(slug="demo", name="Demo", kind=Kind.BINARY, created_by=users["owner"])
    for name, role in (("owner", Role.MANAGER), ("member", Role.RATER), ("researcher", Role.RESEARCHER)):
        Membership.objects.create(project=project, user=users[name], role=role)
    for i in range(3):
        item = Item.objects.create(project=project, external_id=f"i{i}", prompt=f"Question {i}?")
        Candidate.objects.create(item=item, position=0, text="A", model_name="a")
        Candidate.objects.create(item=item, position=1, text="B", model_name="b")
    from annotation.assignment import lease_next

    assignment = lease_next(project=project, rater=users["member"])
    batch = ImportBatch.objects.create(project=project, filename="x.jsonl", status=ImportBatch.Status.SUCCEEDED)
    ids = {
        "slug": "demo",
        "assignment_id": assignment.id,
        "pk": Item.objects.first().id,
        "batch_id": batch.id,
        "user_id": users["member"].id,
        "version": 1,
        "username": "member",
        "name": "agreement",
        "part": "candidate-0",
    }
    _ = (Assignment, DatasetSnapshot)
    return users, ids


def fill(template: str, values: dict, hostile: bool) -> str | None:
    """The route with its parameters filled in: real values, or ids past 64 bits."""
    if "^" in template or "(?P" in template:
        return None  # regex routes (admin internals): skipped

    def sub(match) -> str:
        converter, name = match.group(1) or "str", match.group(2)
        if hostile and converter in ("int", "id"):
            return HUGE
        return str(values.get(name, "x"))

    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", sub, template)


def send(client, method: str, url: str, body, **headers):
    with transaction.atomic():
        if body is None:
            response = client.generic(method, url, **headers)
        elif body[0] == "form":
            response = client.post(url, body[1])
        else:
            response = client.generic(method, url, body[1].encode("utf-8", "surrogatepass"), content_type="application/json")
        transaction.set_rollback(True)
    return response


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()

    logging.disable(logging.CRITICAL)  # every 500 would print its traceback
    call_command("migrate", verbosity=0)
    users, ids = seed()
    def logged_in() -> dict[str, Client]:
        clients = {}
        for name, user in users.items():
            c = Client(raise_request_exception=False)
            c.force_login(user)
            clients[name] = c
        clients["anonymous"] = Client(raise_request_exception=False)
        return clients

    bodies = hostile_bodies()
    form = ("form", {f: "\x00" + "9" * 30 for f in FIELDS})
    sent, errors = 0, Counter()
    examples: dict[str, str] = {}

    def record(role, method, template, url, label, response):
        nonlocal sent
        sent += 1
        if response.status_code >= 500:
            key = f"{method} /{template} [{label}]"
            errors[key] += 1
            examples.setdefault(key, f"{role} {url[:100]}")

    for template, _pattern in routes():
        if template.startswith(("admin/", "static")):
            continue
        if args.verbose:
            print(template, flush=True)
        real, huge = fill(template, ids, False), fill(template, ids, True)
        if real is None:
            continue
        # Fresh sessions per route: a request to /accounts/logout/ ends the client's session.
        for role, client in logged_in().items():
            for url in {real, huge}:
                for query in ("", "?cursor=%ff%fe&all=1&gold=1&page=99999999999999999999&format=xml"):
                    record(role, "GET", template, url + query, "query" if query else "plain", send(client, "GET", url + query, None))
                record(role, "GET", template, url, "html", send(client, "GET", url, None, HTTP_ACCEPT="text/html"))
                record(role, "POST", template, url, "deep value", send(client, "POST", url, bodies[0]))
            for method in ("POST", "PATCH"):
                # Only methods the route takes from this role get the whole list.
                first = send(client, method, real, ("empty object", "{}"))
                record(role, method, template, real, "empty object", first)
                if first.status_code in (401, 403, 404, 405) or (first.status_code == 302 and role == "anonymous"):
                    continue
                for body in [*bodies, form]:
                    record(role, method, template, real, body[0], send(client, method, real, body))
    for key, count in sorted(errors.items()):
        print(f"5xx x{count:<3} {key}  e.g. as {examples[key]}")
    print(f"\n{sent} hostile requests, {sum(errors.values())} server errors on {len(errors)} distinct route/input pairs")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
