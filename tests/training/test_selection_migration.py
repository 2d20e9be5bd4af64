"""Project.selection_model moved to training (training/migrations/0006_selection_choice.py and
annotation/migrations/0008): a project's chosen reward model survives the real migrations, both
ways. The migrations run in a child process on a database file of their own, since the suite's
tables come straight from the models (--nomigrations)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BEFORE = [("annotation", "0007_prompt_sets"), ("training", "0005_evaluation_generation_jobs")]
AFTER = [("annotation", "0008_remove_project_selection_model"), ("training", "0006_selection_choice")]

SCRIPT = f"""
import django
django.setup()
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection).loader.project_state(targets).apps

apps = migrate({BEFORE!r})
Model = apps.get_model("training", "ModelArtifact")
Project = apps.get_model("annotation", "Project")
rm = Model.objects.create(name="rm-a", kind="reward_model", source="local", path="models/rm-a")
Project.objects.create(slug="chose", name="Chose", selection="uncertain", selection_model=rm)
Project.objects.create(slug="newest", name="Newest", selection="uncertain")

apps = migrate({AFTER!r})
Choice = apps.get_model("training", "SelectionChoice")
print("after", sorted(Choice.objects.values_list("project__slug", "model__name")))

apps = migrate({BEFORE!r})
Project = apps.get_model("annotation", "Project")
print("back", sorted(Project.objects.values_list("slug", "selection_model__name")))
"""


def test_it_keeps_each_projects_chosen_reward_model_through_the_migration(tmp_path):
    env = {**os.environ, "ARBITER_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "config.settings"}
    env.pop("DATABASE_URL", None)  # a fresh SQLite file: the migrations are the same on both databases
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines() if line.startswith(("after", "back")))
    assert lines["after"] == "[('chose', 'rm-a')]"
    assert lines["back"] == "[('chose', 'rm-a'), ('newest', None)]"
