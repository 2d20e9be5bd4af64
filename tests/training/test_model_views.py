"""The model registry pages: base models for researchers and managers, a trained model only
for its project, with lineage snapshot -> run -> model."""
from __future__ import annotations

import pytest

from annotation.models import DatasetSnapshot, Membership, Role
from training.models import ModelArtifact, TrainingRun
from training.registry.selectors import model_lineage

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


def _generations(project, base: ModelArtifact, n: int) -> list[ModelArtifact]:
    """n models, each trained (run, snapshot) from the one before: base -> m1 -> ... -> mn."""
    chain = [base]
    for i in range(1, n + 1):
        snapshot = DatasetSnapshot.objects.create(project=project, version=100 + i, status="ready", path=f"s{i}")
        run = TrainingRun.objects.create(project=project, snapshot=snapshot, base_model=chain[-1], method="dpo", status="succeeded")
        chain.append(ModelArtifact.objects.create(name=f"gen-{i}", kind="policy", source="trained", path=f"models/gen-{i}",
                                                  base_model=chain[-1], run=run, snapshot=snapshot))
    return chain


def test_it_reads_a_long_lineage_in_a_fixed_number_of_queries(project, django_assert_num_queries):
    base = ModelArtifact.objects.create(name="root", kind="causal_lm", source="gguf", path="models/root")
    chain = _generations(project, base, 6)
    for leaf, expected in ((chain[2], chain[2::-1]), (chain[6], chain[::-1])):
        leaf = ModelArtifact.objects.select_related("run", "snapshot__project").get(pk=leaf.pk)  # as model_get_for_user loads it
        # The same two queries for 3 models as for 7, with everything the lineage shows loaded.
        with django_assert_num_queries(2):
            lineage = model_lineage(leaf)
            shown = [(m.name, str(m.snapshot) if m.snapshot else None, m.run.pk if m.run else None) for m in lineage]
        assert [m.pk for m in lineage] == [m.pk for m in expected]
        assert shown[0] == (leaf.name, str(leaf.snapshot), leaf.run.pk) and shown[-1] == ("root", None, None)
    assert model_lineage(base) == [base]


def test_it_stops_a_lineage_at_a_cycle(project):
    base = ModelArtifact.objects.create(name="root", kind="causal_lm", source="gguf", path="models/root")
    chain = _generations(project, base, 3)
    ModelArtifact.objects.filter(pk=base.pk).update(base_model=chain[2])  # bad data: root -> gen-2 -> gen-1 -> root
    leaf = ModelArtifact.objects.get(pk=chain[3].pk)
    assert [m.name for m in model_lineage(leaf)] == ["gen-3", "gen-2", "gen-1", "root"]
    root = ModelArtifact.objects.get(pk=base.pk)
    assert [m.name for m in model_lineage(root)] == ["root", "gen-2", "gen-1"]


def test_it_shows_every_generation_on_the_model_page(client_for, project, owner):
    base = ModelArtifact.objects.create(name="root", kind="causal_lm", source="gguf", path="models/root")
    chain = _generations(project, base, 4)
    page = client_for(owner).get(f"/training/models/{chain[4].pk}/").content.decode()
    lineage = page[page.index("<h2>Lineage</h2>"):page.index("</ol>")]
    positions = [lineage.index(m.name) for m in chain[::-1]]
    assert positions == sorted(positions)
    assert all(f"snapshot demo v{100 + i}" in lineage for i in range(1, 5))
