"""The model registry pages: base models for researchers and managers, a trained model only
for its project, with lineage snapshot -> run -> model."""
from __future__ import annotations

import pytest

from annotation.models import DatasetSnapshot, Membership, Role
from training.models import ModelArtifact, TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def lineage(project, owner):
    snapshot = DatasetSnapshot.objects.create(project=project, version=3, status="ready", path="s")
    base = ModelArtifact.objects.create(name="smollm2", kind="causal_lm", source="gguf", path="models/smollm2")
    run = TrainingRun.objects.create(project=project, snapshot=snapshot, base_model=base, method="reward", status="succeeded")
    trained = ModelArtifact.objects.create(name="demo-rm", kind="reward_model", source="trained", path="models/demo-rm",
                                           base_model=base, run=run, snapshot=snapshot, metrics={"accuracy": 0.91})
    return base, run, trained


def test_it_shows_the_lineage_of_a_trained_model(client_for, lineage, owner):
    base, run, trained = lineage
    page = client_for(owner).get(f"/training/models/{trained.pk}/").content.decode()
    assert "snapshot demo v3" in page and f"/training/runs/{run.pk}/" in page and f"/training/models/{base.pk}/" in page
    chain = page[page.index("<h2>Lineage</h2>"):]
    assert chain.index("demo v3") < chain.index(f"run #{run.pk}") < chain.index("demo-rm") < chain.index("smollm2")
    assert "0.91" in page
    page = client_for(owner).get("/training/models/").content.decode()
    assert "demo-rm" in page and "smollm2" in page and f"run #{run.pk}" in page


def test_it_hides_a_trained_model_from_other_projects(client_for, lineage, make_user, make_project, researcher, member, outsider):
    base, run, trained = lineage
    elsewhere = make_user("elsewhere")
    other = make_project(slug="other")
    Membership.objects.create(project=other, user=elsewhere, role=Role.MANAGER)
    page = client_for(elsewhere).get("/training/models/").content.decode()
    assert "smollm2" in page and "demo-rm" not in page  # base models are shared, trained ones are not
    assert client_for(elsewhere).get(f"/training/models/{trained.pk}/").status_code == 404
    assert client_for(elsewhere).get(f"/training/models/{base.pk}/").status_code == 200
    assert "smollm2" in client_for(elsewhere).get(f"/training/models/{base.pk}/").content.decode()
    assert client_for(researcher).get(f"/training/models/{trained.pk}/").status_code == 200
    assert "demo-rm" in client_for(researcher).get(f"/training/models/{trained.pk}/").content.decode()
    assert client_for(member).get(f"/training/models/{trained.pk}/").status_code == 403
    assert client_for(outsider).get(f"/training/models/{trained.pk}/").status_code == 404
    assert client_for(outsider).get("/training/models/").status_code == 403
    assert client_for(member).get(f"/training/models/{base.pk}/").status_code == 403  # a rater only labels
