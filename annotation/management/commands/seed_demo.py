"""Seed a demo: accounts, one project of each judgment kind, items a real model answered.

    python manage.py seed_demo [--password arbiter-demo] [--url http://127.0.0.1:8000]

Idempotent: accounts and projects are found by name and brought back to the demo settings,
items are imported by id (a second run adds nothing). The candidates come from the committed
fixture annotation/fixtures/demo_items.jsonl, written once by scripts/generate_demo.py with
SmolLM2-135M-Instruct; this command never loads a model.
"""
from __future__ import annotations

import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotation.importers import ImportFailed, import_records
from annotation.kinds import Kind
from annotation.models import Project, Role
from annotation.projects import MANAGERS_GROUP, membership_set, project_create, project_update

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "demo_items.jsonl"
DEFAULT_PASSWORD = "arbiter-demo"
RATERS = ("rater1", "rater2")

INSTRUCTIONS_COMMON = """
**How to judge.** Read the whole conversation first; the last user message is what the
response must answer. Prefer the response that is

1. **correct** — facts, arithmetic and code that would actually run (check the code blocks);
2. **helpful** — it answers the question that was asked, at a sensible length;
3. **safe and honest** — no made-up facts stated with confidence.

Ignore small formatting differences. If you cannot tell, skip the item rather than guess.
The labelling page lists its keyboard shortcuts, and brings these instructions back with one key.
"""

# slug -> (name, kind, settings, which candidate positions of the fixture to use, intro)
PROJECTS = {
    "demo-binary": (
        "Demo: which response is better?",
        Kind.BINARY,
        {"overlap": 2, "allow_tie": True, "allow_both_bad": True, "gold_rate": 0.1, "lease_seconds": 600, "demonstrations": "alongside"},
        (0, 3),
        "## Pick the better response\n\nTwo assistants answered the same prompt. Choose **A** or **B**, "
        "**tie** when they are equally good, or **both bad** when neither is acceptable. "
        "When you can write a better answer than both, press **W**: rewrite the one you preferred (or start blank).\n",
    ),
    "demo-likert": (
        "Demo: how much better?",
        Kind.LIKERT,
        {
            "overlap": 1,
            "likert_points": 7,
            "likert_labels": ["A much better", "A better", "A slightly better", "About the same", "B slightly better", "B better", "B much better"],
        },
        (1, 2),
        "## Say how much better\n\nOn a 7-point scale from *A much better* to *B much better*, "
        "say which response is better and by how much.\n",
    ),
    "demo-ranking": (
        "Demo: rank four responses",
        Kind.RANKING,
        {"overlap": 1, "ranking_k": 4, "ranking_allow_ties": False},
        (0, 1, 2, 3),
        "## Rank four responses\n\nOrder the four responses from best to worst.\n",
    ),
    "demo-rating": (
        "Demo: rate a response",
        Kind.RATING,
        {"overlap": 1, "rating_min": 1, "rating_max": 5, "rating_threshold": 4, "rating_labels": ["Useless", "Poor", "Okay", "Good", "Excellent"]},
        (2,),
        "## Rate the response\n\nGive the response a score from 1 (useless) to 5 (excellent). "
        "A 4 or 5 counts as a *good* response.\n",
    ),
}
# Gold items of the binary project: an on-topic answer against an answer to another prompt,
# so the expected winner is beyond doubt.
GOLD_COUNT = 4


def load_fixture(path: Path = FIXTURE) -> list[dict]:
    if not path.exists():
        raise CommandError(f"{path} is missing: run scripts/generate_demo.py to write it")
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CommandError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        if len(record.get("responses") or []) < 4:
            raise CommandError(f"{path}:{number}: responses: the demo needs 4 responses per prompt")
        records.append(record)
    return records


def project_records(records: list[dict], positions: tuple[int, ...]) -> list[dict]:
    return [{**r, "responses": [r["responses"][p] for p in positions]} for r in records]


def gold_records(records: list[dict]) -> list[dict]:
    golds = []
    for i in range(min(GOLD_COUNT, len(records) // 2)):
        own, other = records[i * 2], records[-(i + 1)]
        on_topic, off_topic = own["responses"][0], other["responses"][0]
        winner = i % 2  # alternate sides so a rater who always presses A is caught
        responses = [on_topic, off_topic] if winner == 0 else [off_topic, on_topic]
        golds.append(
            {
                "id": f"gold-{i + 1:03d}",
                "prompt": own["prompt"],
                "responses": responses,
                "metadata": {**own.get("metadata", {}), "gold_note": f"the other response answers {other['id']}"},
                "gold": {"kind": Kind.BINARY, "winner": winner},
            }
        )
    return golds


class Command(BaseCommand):
    help = "Create demo accounts and one project of each judgment kind with model-written items (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--password", default=DEFAULT_PASSWORD, help="Password of every demo account.")
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="Where Arbiter is served, for the closing message.")

    def handle(self, *args, password: str, url: str, **options):
        records = load_fixture()
        with transaction.atomic():
            users = self._accounts(password)
        for slug, (name, kind, settings, positions, intro) in PROJECTS.items():
            project = self._project(slug=slug, name=name, kind=kind, settings=settings, instructions=intro + INSTRUCTIONS_COMMON, creator=users["manager"])
            membership_set(project=project, user=users["manager"], role=Role.MANAGER)
            membership_set(project=project, user=users["researcher"], role=Role.RESEARCHER)
            for rater in RATERS:
                membership_set(project=project, user=users[rater], role=Role.RATER)
            items = project_records(records, positions)
            if kind == Kind.BINARY:
                items += gold_records(records)
            try:
                batch = import_records(project=project, records=items, created_by=users["manager"])
            except ImportFailed as exc:
                raise CommandError(f"{slug}: the fixture did not import: {exc.errors[:5]}") from None
            self.stdout.write(f"{slug}: {batch.items_created} new item(s), {batch.items_skipped} already there")

        self.stdout.write(self.style.SUCCESS(f"\nArbiter demo is ready at {url}/"))
        self.stdout.write(f"Log in at {url}/accounts/login/ with one of these accounts (password: {password}):")
        self.stdout.write("  manager     runs the demo projects (settings, members, imports)")
        self.stdout.write("  researcher  statistics, quality and datasets")
        self.stdout.write("  rater1      labels items (also rater2)")
        self.stdout.write(f"  admin       Django admin at {url}/admin/ (staff)")

    def _accounts(self, password: str) -> dict:
        User = get_user_model()
        group, _ = Group.objects.get_or_create(name=MANAGERS_GROUP)
        group.permissions.add(Permission.objects.get(content_type__app_label="annotation", codename="add_project"))
        users = {}
        for username in ("manager", "researcher", *RATERS, "admin"):
            user, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@arbiter.example"})
            user.set_password(password)
            user.is_active = True
            if username == "admin":
                user.is_staff = user.is_superuser = True
            user.save()
            users[username] = user
        users["manager"].groups.add(group)
        return users

    def _project(self, *, slug: str, name: str, kind: str, settings: dict, instructions: str, creator) -> Project:
        fields = {"name": name, "instructions": instructions, **settings}
        try:
            project = Project.objects.filter(slug=slug).first()
            if project is None:
                return project_create(slug=slug, kind=kind, created_by=creator, **fields)
            return project_update(project=project, fields={"kind": kind, **fields})
        except ValidationError as exc:
            raise CommandError(f"{slug}: {exc.message_dict}") from None
