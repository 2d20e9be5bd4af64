"""Schemathesis against /api/schema/: every operation, as a rater, a manager and an outsider,
with generated (valid and invalid) parameters and bodies. No answer may be a server error, and
every documented answer must match the schema (body and content type).

Path parameters point at real objects of the world most of the time (random slugs and ids only
reach the 404 branch), at generated ones otherwise. Examples per operation and role are bounded
(ARBITER_FUZZ_EXAMPLES per operation, default 9: three per role) so the whole file stays
around two minutes.
"""
from __future__ import annotations

import itertools
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from annotation.assignment import lease_next
from annotation.models import DatasetSnapshot, ImportBatch, Item
from config.wsgi import application
from training.models import ModelArtifact, TrainingRun

pytestmark = [pytest.mark.django_db]

EXAMPLES = int(os.environ.get("ARBITER_FUZZ_EXAMPLES", "9"))
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
# Server errors from bad input that issue 12 point 1 fixes on another branch (e-input): the
# check for 500s is off for these operations only, everything else is still checked. Delete an
# entry once that branch is merged; the test then proves the fix.
# Operations whose server-error check is off until a known bad-input fix lands (none left).
BAD_INPUT_PENDING: set[str] = set()
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
_turn = itertools.count()


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # Autouse fixtures run first: the users of the world are hashed with this, not PBKDF2.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def _keep_the_test_connection():
    """Schemathesis calls the WSGI application as a server would, and its end-of-request signal
    closes the database connection, which holds the test's transaction: do what Django's own
    test client does and keep it open."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_world(_keep_the_test_connection, settings, make_project, add_items, owner, member, outsider):
    settings.ARBITER_API_WRITE_RATE = (0, 1)  # the fuzzer writes faster than any person
    project = make_project(slug="fuzz")
    add_items(project, 6)
    lease = lease_next(project=project, rater=member)
    snapshot = DatasetSnapshot.objects.create(project=project, version=1, status=DatasetSnapshot.Status.READY)
    batch = ImportBatch.objects.create(project=project, filename="a.jsonl", status=ImportBatch.Status.SUCCEEDED)
    base = ModelArtifact.objects.create(name="base-lm", kind=ModelArtifact.Kind.CAUSAL_LM, source=ModelArtifact.Source.LOCAL, path="models/base")
    run = TrainingRun.objects.create(project=project, snapshot=snapshot, base_model=base, method="reward", created_by=owner)
    real = {
        "slug": project.slug, "assignment_id": lease.id, "version": 1, "username": member.username, "name": "manifest.json",
        "batch": batch.id, "item": Item.objects.filter(project=project).first().id, "run": run.id, "model": base.id,
    }
    tokens = {role: Token.objects.get_or_create(user=user)[0].key for role, user in (("manager", owner), ("rater", member), ("outsider", outsider))}
    return real, tokens


def _real_path_parameters(case, real: dict) -> None:
    path = case.operation.path
    for name in case.path_parameters or {}:
        if name == "pk":
            kind = "run" if "/runs/" in path else "model" if "/models/" in path else "batch" if "/imports/" in path else "item"
            case.path_parameters[name] = real[kind]
        elif name in real:
            case.path_parameters[name] = real[name]


ROLES = ("manager", "rater", "outsider")


@schema.parametrize()
@hypothesis_settings(
    max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
    phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
)
def test_it_answers_every_operation_without_server_errors_and_as_documented(case, fuzz_world):
    real, tokens = fuzz_world
    # The roles take turns on one world per operation (building it is most of a test's time).
    turn = next(_turn)
    role = ROLES[turn % len(ROLES)]
    if (turn // len(ROLES)) % 4:  # three cases in four reach real objects
        _real_path_parameters(case, real)
    pending = f"{case.operation.method.upper()} {case.operation.path}" in BAD_INPUT_PENDING
    checks = [c for c in CHECKS if not (pending and c is not_a_server_error)]
    case.call_and_validate(headers={"Authorization": f"Token {tokens[role]}"}, checks=checks)
