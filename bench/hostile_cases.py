"""The hostile input classes of issue 18, one world to send them into, and the judge of what came
back: shared by bench/probe_hostile.py (every class, every role, full size) and
tests/test_probe_hostile.py (a reduced set, in the suite, so that no write route lands unprobed).

A class is a kind of input that must be refused with a 400 naming the field. Each case puts one
hostile value into one field (or key) of a route's valid baseline body, so that a route which
would store the baseline meets the hostile value where it stores it:

- surrogate key     {"\\ud800": 1} at the top and inside every object field
- surrogate value   "a\\ud800b" in every text field
- non-finite number NaN, Infinity, -Infinity (numbers, not JSON but Python's json reads them)
- non-finite string "nan", "inf", "-Infinity" where a number belongs (Python's float() takes them)
- bool for number   true where a number belongs (Python's bool is an int)
- list for object   a list or a string where an object belongs, and as the whole body
- huge text         a 10 MB string in every text field
- past bound        every declared maximum + 1 (recipe fields, serializer and form fields),
                    seeds past 2**63 - 1, limits past 2**31, 10**30

A request is WRONG ACCEPTANCE when it is answered 2xx/3xx and a row written during it holds the
hostile value (Writes: INSERT/UPDATE parameters, JSON columns decoded). A 5xx is a server error.
Anything else (400, 403, 404, 405, 413...) is a refusal.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

CLASSES = ("surrogate key", "surrogate value", "non-finite number", "non-finite string", "bool for number",
           "list for object", "huge text", "past bound")
ROLES = ("manager", "rater", "researcher", "outsider", "staff", "anonymous", "other manager")
SURROGATE = "\ud800"
NON_FINITE_STRINGS = ("nan", "inf", "-Infinity")
MB10 = 10 * 1024 * 1024

# Fields the routes read, by what they hold. Numbers carry the bound the widest route declares
# (None: only the generic limits apply); declared_bounds() raises them to the real declarations.
INTS = {"duration_ms": None, "likert_points": None, "ranking_k": None, "rating_min": None, "rating_max": None, "overlap": None,
        "lease_seconds": None, "gold_min_answers": None, "min_answers": None, "limit": None, "seed": 2**63 - 1, "k": None,
        "max_new_tokens": None, "winner": None, "num_processes": None, "version": None}
FLOATS = {"gold_rate": 1.0, "gold_pause_threshold": 1.0, "rating_threshold": None, "threshold": None, "temperature": None,
          "top_p": 1.0, "tie_band": None, "test_share": 1.0}
TEXTS = ("rationale", "note", "name", "instructions", "client_key", "text", "principles", "completion", "description",
         "prompt", "username", "template", "likert_labels", "rating_labels", "path")
OBJECTS = ("value", "config", "options", "metadata")
GENERIC_INT_BOUND = 2**31  # no count, limit or size the app takes comes near it


@dataclass(frozen=True)
class Case:
    cls: str
    field: str  # "config.seed" for a field inside an object; "" for the whole body or a key
    value: Any
    label: str

    def json_body(self, base: dict) -> str:
        """The baseline with this case's value in its field, as raw JSON (NaN and surrogates as
        Python's json writes them: NaN, "\\ud800")."""
        if self.field == "" and self.cls == "list for object":
            return json.dumps(self.value)
        body = json.loads(json.dumps(base))
        if self.cls == "surrogate key":
            body[SURROGATE] = 1
            for name in OBJECTS:
                if isinstance(body.get(name), dict):
                    body[name][SURROGATE] = 1
            return json.dumps(body)
        _put(body, self.field, self.value)
        return json.dumps(body)

    def form_body(self, base: dict, config_prefix: str = "") -> bytes | None:
        """The same as an HTML form posts it (urlencoded UTF-8; a surrogate as its UTF-8-style
        bytes, which Django decodes to U+FFFD), or None where a form cannot carry the class."""
        if self.cls in ("list for object", "surrogate key") or isinstance(self.value, float) and not math.isfinite(self.value):
            return None
        fields = {k: v for k, v in base.items() if not isinstance(v, (dict, list))}
        name = config_prefix + self.field.removeprefix("config.") if self.field.startswith("config.") else self.field
        value = self.value
        fields[name] = "true" if value is True else str(value)
        return "&".join(f"{quote(k)}={quote(str(v).encode('utf-8', 'surrogatepass'))}" for k, v in fields.items()).encode()


def _put(body: dict, field: str, value) -> None:
    *parents, last = field.split(".")
    node = body
    for p in parents:
        if not isinstance(node.get(p), dict):
            node[p] = {}
        node = node[p]
    node[last] = value


def declared_bounds() -> dict[str, float]:
    """Every maximum the app declares, by field name: recipe config fields (training/recipes,
    `config.NAME`) and the DRF serializers' and Django forms' max_value. The widest per name, so
    that max + 1 is past every route's bound."""
    import inspect

    from django import forms
    from rest_framework import serializers

    bounds: dict[str, float] = {}

    def widen(name, maximum):
        if maximum is not None and not isinstance(maximum, bool):
            bounds[name] = max(bounds.get(name, maximum), maximum)

    from training.recipes import catalog
    from training.recipes.base import config_schema

    for recipe in catalog.all_recipes():
        for row in config_schema(recipe.method):
            if row["type"] in ("int", "float"):
                widen(f"config.{row['name']}", row["maximum"])
    import annotation.api.projects
    import annotation.api.rater
    import annotation.api.selection
    import annotation.api.serializers_rater
    import annotation.forms
    import annotation.views.datasets
    import training.views.models
    import training.api.serializers
    import training.judge.api
    import training.views.forms

    for module in (annotation.api.projects, annotation.api.rater, annotation.api.selection, annotation.api.serializers_rater,
                   training.api.serializers, training.judge.api, annotation.forms, annotation.views.datasets, training.views.models,
                   training.views.forms):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            try:
                if issubclass(cls, serializers.Serializer) and cls.__module__ == module.__name__:
                    fields = cls().fields.items()
                elif issubclass(cls, forms.BaseForm) and cls.__module__ == module.__name__:
                    fields = cls.base_fields.items()
                else:
                    continue
            except (TypeError, KeyError, AttributeError, AssertionError, ValueError):  # needs arguments to build: its fields are probed generically
                continue
            for name, f in fields:
                widen(name, getattr(f, "max_value", None))
    return bounds


def cases(*, fast: bool = False) -> list[Case]:
    """Every case; fast: the suite's form, every class but fewer fields and values (250 kB
    strings instead of 10 MB, one value past each bound)."""
    bounds = declared_bounds()
    ints, floats = dict(INTS), dict(FLOATS)
    for name, maximum in bounds.items():
        (floats if isinstance(maximum, float) and not float(maximum).is_integer() else ints).setdefault(name, None)
    numbers, texts, objects = sorted({*ints, *floats, "options.test_share", "options.min_agreement", "options.sft_min_agreement"}), TEXTS, OBJECTS
    non_finite, non_finite_strings, size = (float("nan"), float("inf"), float("-inf")), NON_FINITE_STRINGS, MB10
    if fast:
        numbers, texts, objects = ["limit", "seed", "gold_rate", "config.seed"], ("rationale", "instructions"), ("value", "config")
        non_finite, non_finite_strings, size = (float("nan"),), ("inf",), 250_000  # past every text cap (instructions: 100,000)
    out = [Case("surrogate key", "", None, "key \\ud800")]
    for name in texts:
        out.append(Case("surrogate value", name, f"a{SURROGATE}b", f"{name}=\\ud800"))
        out.append(Case("huge text", name, "x" * size, f"{name}={size // 1024} kB"))
    for name in numbers:
        out += [Case("non-finite number", name, value, f"{name}={value}") for value in non_finite]
        out += [Case("non-finite string", name, value, f"{name}={value!r}") for value in non_finite_strings]
        out.append(Case("bool for number", name, True, f"{name}=true"))
        past = _past(name, bounds.get(name, ints.get(name, floats.get(name, bounds.get(name.split(".")[-1])))))
        for value in past[:1] if fast else past:
            out.append(Case("past bound", name, value, f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"))
    for name in objects:
        out.append(Case("list for object", name, [1, 2], f"{name}=[1, 2]"))
        out.append(Case("list for object", name, "text", f"{name}='text'"))
    out.append(Case("list for object", "", [1, 2, 3], "body=[1, 2, 3]"))
    out.append(Case("list for object", "", "hello", "body='hello'"))
    return out


def _past(name: str, maximum) -> list:
    """Numbers past the field's bound: max + 1 where one is declared, and the generic limits."""
    values = []
    if maximum is not None:
        values.append(maximum + 1 if isinstance(maximum, int) else float(maximum) * 10 + 1)
    values += [2**63 if "seed" in name else GENERIC_INT_BOUND + 1, 10**30]
    return list(dict.fromkeys(values))


# --- What the server stored ----------------------------------------------------------------

_INSERT = re.compile(r'^\s*INSERT INTO "?(\w+)"? \((.*?)\) VALUES', re.S | re.I)
_UPDATE = re.compile(r'^\s*UPDATE "?(\w+)"? SET (.*?)(?: WHERE |$)', re.S | re.I)
IGNORED_TABLES = {"django_session", "django_admin_log"}


class Writes:
    """INSERT and UPDATE statements run while it is installed (connection.execute_wrapper), as
    (table, column, value) rows: what the request stored."""

    def __init__(self):
        self.rows: list[tuple[str, str, Any]] = []

    def __call__(self, execute, sql, params, many, context):
        if params and sql.lstrip()[:6].upper() in ("INSERT", "UPDATE"):
            for group in (params if many else [params]):
                self._record(sql, list(group))
        return execute(sql, params, many, context)

    def _record(self, sql: str, params: list) -> None:
        if m := _INSERT.match(sql):
            table, cols = m.group(1), [c.strip().strip('"') for c in m.group(2).split(",")]
            for i, value in enumerate(params):
                self.rows.append((table, cols[i % len(cols)] if cols else "?", value))
        elif m := _UPDATE.match(sql):
            table = m.group(1)
            parts = re.split(r'"(\w+)" = ', m.group(2))[1:]
            cols = [parts[i] for i in range(0, len(parts), 2) for _ in range(parts[i + 1].count("%s"))]
            for i, value in enumerate(params):
                self.rows.append((table, cols[i] if i < len(cols) else "?", value))
        if self.rows and self.rows[-1][0] in IGNORED_TABLES:
            self.rows = [r for r in self.rows if r[0] not in IGNORED_TABLES]

    def values(self):
        """(name, value) of every column written and every key inside a JSON column."""
        for _, col, value in self.rows:
            yield col, value
            if isinstance(value, str) and value[:1] in "[{\"":
                try:
                    decoded = json.loads(value)
                except ValueError:
                    continue
                yield col, decoded
                yield from _walk(decoded)


def _walk(node, key=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield k, v
            yield from _walk(v, k)
    elif isinstance(node, list):
        for v in node:
            yield key, v
            yield from _walk(v, key)


def _has_surrogate(value) -> bool:
    return isinstance(value, str) and (re.search("[\ud800-\udfff]", value) is not None or "\\ud800" in value.lower())


def stored_bad(case: Case, writes: Writes, baseline: Writes | None = None) -> bool:
    """Whether a row written holds the case's hostile value (the field's own column or key).
    `baseline`: what the route wrote for its valid body; a 1 it wrote too (a default, such as a
    snapshot's sft_min_agreement 1.0) is not a `true` taken as 1."""
    leaf = case.field.rsplit(".", 1)[-1]
    names = {leaf, f"{leaf}_id"}
    ones = {name for name, value in (baseline.values() if baseline else ()) if _is_one(value)}
    for name, value in writes.values():
        if case.cls in ("surrogate key", "surrogate value"):
            if _has_surrogate(value) or _has_surrogate(name):
                return True
        elif case.cls == "huge text":
            if isinstance(value, str) and len(value) > len(case.value) // 2:
                return True
        elif name in names:
            if case.cls in ("non-finite number", "non-finite string"):
                if isinstance(value, float) and not math.isfinite(value) or str(value).lower() in ("nan", "inf", "-inf", "infinity", "-infinity"):
                    return True
            elif case.cls == "bool for number":
                if value is True or (_is_one(value) and name not in ones):
                    return True
            elif case.cls == "list for object":
                if case.field and isinstance(value, (list, str)) and value == case.value:
                    return True
            elif case.cls == "past bound":
                if not isinstance(value, bool) and isinstance(value, (int, float)) and value >= case.value:
                    return True
        if case.cls == "past bound" and not isinstance(value, bool) and isinstance(value, (int, float)) and value == case.value and case.value >= 2**31:
            return True
    return False


def _is_one(value) -> bool:
    return isinstance(value, (bool, int, float)) and value == 1


def verdict(case: Case, status: int, writes: Writes, baseline: Writes | None = None) -> str:
    """'5xx', 'wrong' (accepted and stored), or 'ok'."""
    if status >= 500:
        return "5xx"
    if 200 <= status < 400 and stored_bad(case, writes, baseline):
        return "wrong"
    return "ok"


# --- The world, the routes, the baselines --------------------------------------------------

def world() -> tuple[dict, dict]:
    """Projects demo (A) and bee (B); a manager (owner), rater (member) and researcher of A, an
    outsider, staff and a manager of B only; a ready snapshot demo v1 that holds B too; a base
    model, a policy and a reward model trained on it; the rater's open assignment and a judgment
    (My work, adjudication). Returns (users by role, ids for the URL parameters and bodies)."""
    from django.contrib.auth import get_user_model

    from annotation.assignment import lease_next
    from annotation.exports import snapshot_create
    from annotation.exports.build import snapshot_build
    from annotation.kinds import Kind
    from annotation.models import Candidate, ImportBatch, Item, Judgment, Membership, Project, Role
    from training.registry.models import ModelArtifact

    User = get_user_model()
    make = {name: User.objects.create_user(name, f"{name}@example.org", "correct-horse-battery")
            for name in ("owner", "member", "researcher", "outsider", "bmanager")}
    make["staff"] = User.objects.create_superuser("staff", "staff@example.org", "correct-horse-battery")
    users = {"manager": make["owner"], "rater": make["member"], "researcher": make["researcher"], "outsider": make["outsider"],
             "staff": make["staff"], "anonymous": None, "other manager": make["bmanager"]}
    # Numbers other than 1 where a row could hold them, so that a stored `true` (1) shows.
    demo = Project.objects.create(slug="demo", name="Demo", kind=Kind.BINARY, created_by=make["owner"], overlap=2,
                                  demonstrations=Project.Demonstrations.ALONGSIDE)  # so that its route takes a body
    bee = Project.objects.create(slug="bee", name="Bee", kind=Kind.BINARY, created_by=make["bmanager"], overlap=2)
    for project, name, role in ((demo, "owner", Role.MANAGER), (demo, "member", Role.RATER), (demo, "researcher", Role.RESEARCHER),
                                (bee, "bmanager", Role.MANAGER), (bee, "owner", Role.MANAGER), (bee, "member", Role.RATER)):
        Membership.objects.create(project=project, user=make[name], role=role)
    for project in (demo, bee):
        for i in range(6):
            item = Item.objects.create(project=project, external_id=f"{project.slug}-{i}", prompt=f"Question {i} of {project.slug}?")
            Candidate.objects.create(item=item, position=0, text="Answer A", model_name="a")
            Candidate.objects.create(item=item, position=1, text="Answer B", model_name="b")
            if i < 4:
                Judgment.objects.create(project=project, item=item, rater=make["member"], kind=Kind.BINARY, value={"winner": i % 2},
                                        display_order=[0, 1])
    snapshot = snapshot_build(snapshot_id=snapshot_create(project=demo, options={"test_share": 0.5}, created_by=make["owner"],
                                                          extra_projects=[bee], enqueue=False).id)
    base = ModelArtifact.objects.create(name="smol", kind=ModelArtifact.Kind.CAUSAL_LM, source=ModelArtifact.Source.GGUF, path="models/smol")
    policy = ModelArtifact.objects.create(name="policy", kind=ModelArtifact.Kind.POLICY, source=ModelArtifact.Source.TRAINED,
                                          path="models/policy", base_model=base, snapshot=snapshot)
    rm = ModelArtifact.objects.create(name="rm", kind=ModelArtifact.Kind.REWARD_MODEL, source=ModelArtifact.Source.TRAINED,
                                      path="models/rm", base_model=base, snapshot=snapshot)
    assignment = lease_next(project=demo, rater=make["member"])
    judgment = Judgment.objects.filter(project=demo, rater=make["member"]).order_by("id").first()
    batch = ImportBatch.objects.create(project=demo, filename="x.jsonl", status=ImportBatch.Status.SUCCEEDED)
    ids = {"slug": "demo", "assignment_id": assignment.id, "pk": policy.pk, "batch_id": batch.id, "user_id": make["member"].id,
           "version": snapshot.version, "username": "member", "name": "agreement", "part": "candidate-0", "judgment_id": judgment.id,
           "item_id": judgment.item_id, "snapshot": snapshot.pk, "base": base.pk, "policy": policy.pk, "rm": rm.pk}
    return users, ids


def baseline(template: str, ids: dict) -> dict:
    """A body the route would accept from its manager (or rater, for the labelling routes): the
    hostile value then replaces one field of it. Routes not named here get {}."""
    b = {
        "api/projects/": {"slug": "probe-new", "name": "Probe", "kind": "binary", "instructions": "Pick one", "overlap": 2},
        "api/projects/<slug:slug>/": {"name": "Demo", "instructions": "Pick one", "overlap": 2, "gold_rate": 0.2, "lease_seconds": 900},
        "api/projects/<slug:slug>/members/": {"username": "outsider", "role": "rater"},
        "api/projects/<slug:slug>/members/<str:username>/": {"role": "rater", "paused": False},
        "api/assignments/<id:assignment_id>/submit/": {"value": {"winner": 0}, "rationale": "fine", "duration_ms": 1200, "client_key": "k-1"},
        "api/projects/<slug:slug>/datasets/": {"options": {"test_share": 0.2}},
        "api/projects/<slug:slug>/selection/": {"selection": "uncertainty", "selection_model": ids["rm"]},
        "api/training/runs/": {"project": "demo", "snapshot": ids["snapshot"], "base_model": "smol", "method": "dpo",
                               "config": {"seed": 7, "max_length": 256}},
        "api/training/models/<id:pk>/evaluations/": {"reward_model": ids["rm"], "reference": "smol", "prompts": "demo:v1", "limit": 8,
                                                     "seed": 3, "temperature": 0.7, "top_p": 0.9, "max_new_tokens": 32},
        "api/training/models/<id:pk>/generation-batches/": {"project": "demo", "prompts": "demo:v1", "limit": 8, "seed": 3,
                                                            "policies": [{"model": "policy", "k": 2, "temperature": 0.7}]},
        "api/training/projects/<slug:slug>/judge-jobs/": {"model": "smol", "limit": 5, "tie_band": 0.02},
        "projects/new/": {"slug": "probe-form", "name": "Probe", "kind": "binary", "instructions": "Pick one", "overlap": 2},
        "projects/<slug:slug>/members/": {"action": "add", "username": "outsider", "role": "rater"},
        "projects/<slug:slug>/label/<id:assignment_id>/submit/": {"winner": "0", "duration_ms": 1200, "rationale": "fine", "client_key": "k-2"},
        "projects/<slug:slug>/my-work/<id:judgment_id>/": {"winner": "1", "rationale": "fine"},
        "projects/<slug:slug>/adjudication/<id:item_id>/": {"winner": "1", "note": "fine"},
        "projects/<slug:slug>/quality/gold/": {"threshold": 0.5, "min_answers": 3},
        "projects/<slug:slug>/selection/": {"selection": "uncertainty", "selection_model": ids["rm"]},
        "training/projects/<slug:slug>/new/": {"snapshot": ids["snapshot"], "base_model": ids["base"], "method": "dpo", "training": "lora",
                                               "num_processes": 2, "config": {"seed": 7, "max_length": 256}},
        "training/models/<id:pk>/evaluate/": {"reward_model": ids["rm"], "reference": "smol", "prompts": "demo:v1", "limit": 8, "seed": 3},
        "training/models/<id:pk>/generate/": {"project": "demo", "prompts": "demo:v1", "policies": "policy@0.7 x2", "limit": 8, "seed": 3},
        "training/projects/<slug:slug>/judge/start/": {"model": "smol", "limit": 5},
        "training/projects/<slug:slug>/judge/principles/": {"principles": "Be kind"},
        "projects/<slug:slug>/label/preview/": {"text": "Some *markdown*"},
        "projects/<slug:slug>/label/<id:assignment_id>/demonstration/": {"text": "A better answer"},
    }.get(template, {})
    if template == "projects/<slug:slug>/settings/":
        from annotation.forms import ProjectSettingsForm
        from annotation.models import Project

        form = ProjectSettingsForm(instance=Project.objects.get(slug="demo"))
        b = {k: ("\n".join(v) if isinstance(v, list) else v) for k, v in form.initial.items() if v is not None and not isinstance(v, dict)}
    return b


def config_prefix(template: str, base: dict) -> str:
    """The run form names a method's settings METHOD-NAME."""
    return f"{base.get('method', 'dpo')}-" if template == "training/projects/<slug:slug>/new/" else ""


def form_fields(template: str, base: dict) -> dict:
    """The baseline as form fields."""
    prefix = config_prefix(template, base)
    out = {k: v for k, v in base.items() if not isinstance(v, (dict, list))}
    for k, v in (base.get("config") or {}).items():
        out[prefix + k] = v
    return out


# Routes that read no body, left out on purpose (anything else in the URLconf is probed).
NOT_PROBED = {"health/": "the load balancer's check: reads no body, and answers 503 while a queue has no worker (the probe runs none)"}


def routes(resolver=None, prefix: str = "") -> list[str]:
    """Every route template of the URLconf except the admin's, static files' and NOT_PROBED."""
    from django.urls import URLPattern, URLResolver, get_resolver

    resolver = resolver or get_resolver()
    out = []
    for p in resolver.url_patterns:
        text = str(p.pattern)
        if isinstance(p, URLResolver):
            out.extend(routes(p, prefix + text))
        elif isinstance(p, URLPattern) and not (prefix + text).startswith(("admin/", "static")) and "^" not in text and "(?P" not in text:
            if prefix + text not in NOT_PROBED:
                out.append(prefix + text)
    return out


def fill(template: str, ids: dict) -> str:
    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: str(ids.get(m.group(2), "x")), template)


def clients(users: dict) -> dict:
    from django.test import Client

    out = {}
    for role, user in users.items():
        c = Client(raise_request_exception=False)
        if user is not None:
            c.force_login(user)
        out[role] = c
    return out


@dataclass
class Tally:
    requests: int = 0
    errors: int = 0
    wrong: int = 0


class Probe:
    """Sends cases and counts them per class; each request runs in a transaction rolled back
    afterwards, so one request's success cannot hide the next one's failure."""

    def __init__(self, *, users: dict, ids: dict, cases: list[Case], roles=ROLES, on_route=None):
        self.users, self.ids, self.cases, self.roles, self.on_route = users, ids, cases, roles, on_route
        self.totals = {c: Tally() for c in (*CLASSES, "baseline")}
        self.findings: dict[str, list[str]] = {}
        self.probed: dict[str, set[str]] = {}  # template -> methods some role could write with

    def send(self, client, method: str, url: str, body: bytes, content_type: str):
        from django.db import connection, transaction

        writes = Writes()
        with transaction.atomic(), connection.execute_wrapper(writes):
            response = client.generic(method, url, body, content_type=content_type)
            transaction.set_rollback(True)
        return response.status_code, writes

    def count(self, cls: str, what: str, status: int, verdict_: str) -> None:
        tally = self.totals[cls]
        tally.requests += 1
        if verdict_ == "5xx":
            tally.errors += 1
        elif verdict_ == "wrong":
            tally.wrong += 1
        if verdict_ != "ok":
            self.findings.setdefault(f"{verdict_} {what}", []).append(str(status))

    def run(self, templates: list[str] | None = None) -> None:
        for template in templates or routes():
            if self.on_route:
                self.on_route(template)
            url, base = fill(template, self.ids), baseline(template, self.ids)
            api = template.startswith("api/")
            for role in self.roles:
                if role not in self.users:
                    continue
                # Fresh session per route and role: a request to /accounts/logout/ ends it.
                client = clients({role: self.users[role]})[role]
                for method in ("POST", "PUT", "PATCH", "DELETE"):
                    status, base_writes = self.send(client, method, url, json.dumps(base).encode(), "application/json")
                    self.count("baseline", f"{method} /{template} [baseline] as {role}", status, "5xx" if status >= 500 else "ok")
                    if status in (401, 403, 404, 405) or (status == 302 and role == "anonymous"):
                        continue  # the route refuses this role or method whatever the body
                    self.probed.setdefault(template, set()).add(method)
                    for case in self.cases:
                        if "." in case.field and case.field.split(".")[0] not in base:
                            continue  # settings inside an object (a recipe's, a snapshot's): only routes that read it
                        if method == "DELETE" and case.cls not in ("surrogate key", "list for object"):
                            continue
                        raw = case.json_body(base).encode("utf-8", "surrogatepass")
                        status, writes = self.send(client, method, url, raw, "application/json")
                        self.count(case.cls, f"{method} /{template} [{case.label}] as {role}", status, verdict(case, status, writes, base_writes))
                        if not api and method == "POST" and (form := case.form_body(form_fields(template, base), config_prefix(template, base))) is not None:
                            status, writes = self.send(client, method, url, form, "application/x-www-form-urlencoded")
                            self.count(case.cls, f"{method} /{template} [form {case.label}] as {role}", status, verdict(case, status, writes, base_writes))

    def table(self) -> str:
        lines = [f"{'class':<20} {'requests':>9} {'5xx':>6} {'wrong':>6}"]
        for cls, t in self.totals.items():
            lines.append(f"{cls:<20} {t.requests:>9} {t.errors:>6} {t.wrong:>6}")
        hostile = [t for c, t in self.totals.items() if c != "baseline"]
        lines.append(f"{'total (hostile)':<20} {sum(t.requests for t in hostile):>9} {sum(t.errors for t in hostile):>6} {sum(t.wrong for t in hostile):>6}")
        return "\n".join(lines)

    @property
    def failures(self) -> int:
        return sum(t.errors + t.wrong for t in self.totals.values())
