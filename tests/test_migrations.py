"""Tests build tables straight from the models (--nomigrations), so this is what keeps the
committed migrations honest: a model change without its migration fails here."""
from io import StringIO

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_it_has_a_migration_for_every_model_change():
    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit:
        pytest.fail(f"models and migrations differ (run manage.py makemigrations):\n{out.getvalue()}")
