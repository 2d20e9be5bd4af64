"""Seed a demo: accounts, one project of each judgment kind, items a real model answered, and a
project that asks attribute questions beside the judgment, with judgments already in it.

    python manage.py seed_demo [--password arbiter-demo] [--url http://127.0.0.1:8000]

Idempotent: accounts and projects are found by name and brought back to the demo settings,
items are imported by id (a second run adds nothing), and the attributes project's judgments are
written only for a demo rater who has none there yet. The candidates come from the committed
fixture annotation/fixtures/demo_items.jsonl, written once by scripts/generate_demo.py with
SmolLM2-135M-Instruct; this command never loads a model.
"""
from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotation.assignment import lease_next
from annotation.importers import ImportFailed, import_records
from annotation.judgments import judgment_submit
from annotation.kinds import TIE, Kind
from annotation.models import Item, Judgment, Project, Role
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
    "demo-attributes": (
        "Demo: helpfulness attributes",
        Kind.BINARY,
        {
            "overlap": 2,
            "allow_tie": True,
            "gold_rate": 0.2,
            "questions": [
                {"key": "helpfulness", "label": "Helpfulness", "type": "scale", "per": "response", "min": 0, "max": 4, "required": True,
                 "help": "How useful is the response to the prompt overall? 0 = not at all, 4 = fully answers it."},
                {"key": "correctness", "label": "Correctness", "type": "scale", "per": "response", "min": 0, "max": 4, "required": True,
                 "help": "Are the facts, arithmetic and code right? 0 = mostly wrong, 4 = all correct."},
                {"key": "verbosity", "label": "Verbosity", "type": "scale", "per": "response", "min": 0, "max": 4, "required": True,
                 "help": "How much detail, relative to what the prompt asks for? 0 = terse, 4 = very long."},
                {"key": "harm", "label": "Harm categories", "type": "labels", "per": "response", "choices": ["misinformation", "dangerous_advice", "toxicity"],
                 "help": "Tick every category that applies to a response; leave it empty when none does."},
            ],
        },
        (0, 1),
        "## Judge two responses, then rate each one\n\nPick the better response (**A**, **B** or **tie**), then give each "
        "response a 0-4 score for **helpfulness**, **correctness** and **verbosity** (HelpSteer's attributes), and tick "
        "any harm category that applies.\n",
    ),
}
# The attributes project comes with judgments by the demo raters, so its quality page has figures.
ATTRIBUTES = "demo-attributes"
SEEDED_ITEMS = 12  # items both demo raters judge; the rest of the fixture is left to label live
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
                items += gold_records(records)[: 2 if slug == ATTRIBUTES else GOLD_COUNT]
            if slug == ATTRIBUTES:
                # The queue hands out the least-taken item first, so both raters judge the same
                # items only when those are all there is: import them, judge, then the rest.
                first = items[:SEEDED_ITEMS] + [r for r in items if r.get("gold")]
                created = self._import(project=project, slug=slug, items=first, creator=users["manager"])[0]
                seeded = self._attribute_judgments(project=project, raters=[users[r] for r in RATERS])
                created2, skipped = self._import(project=project, slug=slug, items=items, creator=users["manager"])
                self.stdout.write(f"{slug}: {created + created2} new item(s), {skipped - created} already there; {seeded} new judgment(s) with attribute answers")
            else:
                created, skipped = self._import(project=project, slug=slug, items=items, creator=users["manager"])
                self.stdout.write(f"{slug}: {created} new item(s), {skipped} already there")

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

    def _import(self, *, project: Project, slug: str, items: list[dict], creator) -> tuple[int, int]:
        """(items created, items already there)."""
        try:
            batch = import_records(project=project, records=items, created_by=creator)
        except ImportFailed as exc:
            raise CommandError(f"{slug}: the fixture did not import: {exc.errors[:5]}") from None
        return batch.items_created, batch.items_skipped

    def _attribute_judgments(self, *, project: Project, raters: list) -> int:
        """Judgments with answers from each demo rater who has none in the project yet, through
        the same lease and submit a rater's click goes through. The gold items' expected answers
        are set here: the importer keeps only a gold item's primary answer."""
        for item in Item.objects.filter(project=project, is_gold=True):
            winner = item.gold["winner"]
            expected = {"helpfulness": [3, 0] if winner == 0 else [0, 3], "correctness": [3, 0] if winner == 0 else [0, 3], "harm": [[], []]}
            Item.objects.filter(id=item.id).update(gold={**item.gold, "answers": expected})
        seeded = 0
        for r, rater in enumerate(raters):
            if Judgment.objects.filter(project=project, rater=rater).exists():
                continue
            rng = random.Random(r)  # reproducible gold mixing and on-screen order
            for _ in range(2 * SEEDED_ITEMS):  # until the queue of seeded items runs out
                assignment = lease_next(project=project, rater=rater, rng=rng)
                if assignment is None:
                    break
                value, answers = demo_answers(assignment.item, rater_no=r)
                judgment_submit(assignment=assignment, rater=rater, value=value, answers=answers, duration_ms=20_000 + 1_000 * (seeded % 7))
                seeded += 1
        return seeded


def _draw(*parts) -> int:
    """A stable pseudo-random number 0..99 from the parts (no state, same on every run)."""
    return int(hashlib.sha1(repr(parts).encode()).hexdigest()[:8], 16) % 100


def demo_answers(item: Item, *, rater_no: int) -> tuple[dict, dict]:
    """A plausible judgment of a demo item: scores follow the gold answers or a per-response
    'true' quality, verbosity the response's length; the second rater is off by a point now and
    then, so agreement is high but not perfect."""
    candidates = sorted(item.candidates.all(), key=lambda c: c.position)
    gold = (item.gold or {}).get("answers") or {}
    scores: dict[str, list[int]] = {"helpfulness": [], "correctness": [], "verbosity": []}
    harm = []
    for c in candidates:
        truth = gold["helpfulness"][c.position] if gold else 1 + _draw(item.external_id, c.position) % 4
        noise = (1 if _draw(item.external_id, c.position, rater_no) < 50 else -1) if rater_no and _draw(item.external_id, c.position, "n", rater_no) < 35 else 0
        helpfulness = min(4, max(0, truth + noise))
        slip = 1 if rater_no and _draw(item.external_id, c.position, "cn", rater_no) < 25 else 0
        correctness = min(4, max(0, truth - (1 if _draw(item.external_id, c.position, "c") < 30 else 0) - slip))
        verbosity = min(4, len(c.text) // 400 + (1 if rater_no and _draw(item.external_id, c.position, "v", rater_no) < 20 else 0))
        scores["helpfulness"].append(helpfulness)
        scores["correctness"].append(correctness)
        scores["verbosity"].append(verbosity)
        harm.append(["misinformation"] if correctness <= 1 and _draw(item.external_id, c.position, "h", rater_no) < 70 else [])
    a, b = scores["helpfulness"][:2]
    value = {"winner": 0 if a > b else 1 if b > a else TIE}
    return value, {**scores, "harm": harm}
