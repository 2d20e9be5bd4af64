"""The web process never loads torch (DESIGN.md): in a fresh interpreter with Django set up, import
the WSGI application, resolve every URL pattern and import its view's module, call the score
endpoint (no scoring worker: 503), and check that no training library came with any of it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.authtoken.models import Token

from tests.training.test_api import build_tiny_reward_model
from tests.workers import _database_url
from training.models import ModelArtifact

HEAVY = ("torch", "transformers", "trl", "peft", "accelerate", "datasets")

SCRIPT = r"""
import importlib, json, sys
import django
django.setup()
from django.urls import URLPattern, URLResolver, get_resolver
import config.wsgi  # noqa: F401 - what gunicorn loads

views = set()
def walk(patterns):
    for p in patterns:
        if isinstance(p, URLResolver):
            walk(p.url_patterns)
        elif isinstance(p, URLPattern):
            callback = p.callback
            target = getattr(callback, "view_class", None) or getattr(callback, "cls", None) or callback
            views.add(target.__module__)
walk(get_resolver().url_patterns)
for module in sorted(views):
    importlib.import_module(module)
if len(sys.argv) > 2:  # a score request, as a client would send it
    from django.test.utils import setup_test_environment
    from rest_framework.test import APIClient
    setup_test_environment()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + sys.argv[2])
    response = client.post(sys.argv[1], {"prompt": "hi", "responses": ["a"]}, format="json")
    views.add(f"status {response.status_code}")
heavy = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
print(json.dumps({"views": sorted(views), "heavy": heavy}))
"""


def heavy_modules_after(*args: str, env: dict | None = None) -> dict:
    script = f"HEAVY = {HEAVY!r}\n" + SCRIPT
    out = subprocess.run([sys.executable, "-c", script, *args], cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **(env or {})})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_it_imports_every_view_without_torch():
    found = heavy_modules_after()
    assert "training.api.models" in found["views"] and "training.views.runs" in found["views"]
    assert found["heavy"] == [], f"the web process imported {found['heavy'][:10]}"


@pytest.mark.django_db(transaction=True)
def test_it_scores_without_loading_torch_in_the_web_process(researcher, project, snapshot, settings):
    build_tiny_reward_model(Path(settings.ARTIFACT_ROOT) / "models" / "tiny-rm")
    rm = ModelArtifact.objects.create(name="tiny-rm", kind="reward_model", source="trained", path="models/tiny-rm", snapshot=snapshot)
    token = Token.objects.create(user=researcher)
    found = heavy_modules_after(f"/api/training/models/{rm.pk}/score/", token.key, env={
        "DATABASE_URL": _database_url(), "ARTIFACT_ROOT": str(settings.ARTIFACT_ROOT), "CELERY_BROKER_URL": "memory://",
        "CELERY_TASK_ALWAYS_EAGER": "false", "ARBITER_SCORE_TIMEOUT_SECONDS": "1"})
    assert "status 503" in found["views"], found["views"]  # nobody serves the score queue here
    assert found["heavy"] == [], f"scoring loaded {found['heavy'][:10]} in the web process"
