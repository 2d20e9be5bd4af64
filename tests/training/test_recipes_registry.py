"""One recipe registry: a method is its module plus one line in RECIPE_MODULES. A recipe
registered only here shows in the start form, the API and the admin, and runs end to end."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from training.models import ModelArtifact, TrainingRun
from training.recipes import catalog


@pytest.fixture
def echo(monkeypatch, settings):
    from tests.training import dummy_recipe

    # As a deployment adds a method of its own: through the setting, which the training child
    # process reads from the environment it inherits.
    monkeypatch.setenv("ARBITER_EXTRA_RECIPES", "echo=tests.training.dummy_recipe")
    settings.ARBITER_EXTRA_RECIPES = "echo=tests.training.dummy_recipe"
    catalog.register(dummy_recipe.RECIPE)  # again, when an earlier test unregistered it
    yield catalog.get("echo")
    catalog.unregister("echo")
    catalog.unregister("echo_online")  # importing dummy_recipe registers it too; the test that needs it registers it again


def test_it_lists_every_method_with_what_it_reads_and_produces():
    recipes = {r.method: r for r in catalog.all_recipes()}
    assert {"reward", "dpo", "sft", "kto"} <= set(recipes)
    assert (recipes["sft"].reads, recipes["kto"].reads, recipes["dpo"].reads) == ("sft", "unpaired", "preference")
    assert recipes["reward"].produces == "reward_model" and recipes["kto"].produces == "policy"
    assert "encoder" in recipes["reward"].base_kinds and "encoder" not in recipes["sft"].base_kinds


@pytest.mark.django_db(transaction=True)
def test_it_offers_a_newly_registered_method_everywhere(echo, client_for, owner, project, make_snapshot, tiny_model):
    from tests.training.conftest import sft_rows

    base = tiny_model()
    snapshot = make_snapshot(project, sft_rows(4, seed=1), sft_rows(2, seed=2), fmt="sft")
    client = client_for(owner)
    page = client.get(f"/training/projects/{project.slug}/new/").content.decode()
    assert 'value="echo"' in page and "Echo policy (test)" in page and 'name="echo-echo_volume"' in page
    assert "Reads the snapshot's <code>sft/</code> files" in page

    recipes = client.get("/api/training/recipes/").json()
    echo_api = next(r for r in recipes if r["method"] == "echo")
    assert echo_api["reads"] == "sft" and any(f["name"] == "echo_volume" and f["default"] == 3 for f in echo_api["config"])
    assert {"loss", "echoes"} <= {m["key"] for m in echo_api["metrics"]}

    response = client.post("/api/training/runs/", {"project": project.slug, "snapshot": snapshot.pk, "base_model": base.name,
                                                    "method": "echo", "config": {"echo_volume": 5}}, content_type="application/json")
    assert response.status_code == 201, response.content
    run = TrainingRun.objects.get(pk=response.json()["id"])
    assert run.status == TrainingRun.Status.SUCCEEDED, run.log_tail
    assert "echo at volume 5" in run.log_tail and run.metrics[-1]["echoes"] == 3.0
    assert ModelArtifact.objects.get(run=run).kind == "policy"
    detail = client.get(f"/training/runs/{run.pk}/").content.decode()
    assert "Echo policy (test) run" in detail and "0.750 (3 of 4; 95% CI" in detail and "&quot;Echoes&quot;" in detail

    staff = client_for(owner)
    owner.is_staff = owner.is_superuser = True
    owner.save()
    assert 'value="echo"' in staff.get("/admin/training/trainingrun/add/").content.decode()

    bad = client.post("/api/training/runs/", {"project": project.slug, "snapshot": snapshot.pk, "base_model": base.name,
                                               "method": "nope"}, content_type="application/json")
    assert bad.status_code == 400 and "method" in bad.json()


def test_it_names_no_method_outside_the_recipe_modules():
    """Adding a method touches its module and RECIPE_MODULES only: the runner, services, forms,
    API, admin, templates and script never spell a method's name."""
    root = Path(django_settings.BASE_DIR)
    files = [root / "training" / name for name in ("admin.py", "models.py")]
    files += [root / "training" / "runs" / name for name in ("runner.py", "services.py", "models.py", "results.py")]
    files += sorted((root / "training" / "api").glob("*.py")) + sorted((root / "training" / "views").glob("*.py"))
    files += sorted((root / "templates" / "training").glob("*.html")) + [root / "static" / "js" / "training.js"]
    pattern = re.compile(r"""["'](reward|dpo|sft|kto|ppo|rloo|grpo)["']""")
    found = [f"{f.relative_to(root)}: {m.group(0)}" for f in files for m in pattern.finditer(f.read_text())]
    assert found == []


@pytest.mark.dbless
@pytest.mark.django_db(transaction=True)
def test_it_asks_online_methods_for_a_reward_model_and_hands_its_path_to_the_recipe(monkeypatch, settings, echo, client_for, owner, project,
                                                                                      make_snapshot, tiny_model):
    from tests.training.conftest import sft_rows
    from training.runs.services import ConfigError, run_create

    from tests.training import dummy_recipe

    both = "echo=tests.training.dummy_recipe,echo_online=tests.training.dummy_recipe"
    monkeypatch.setenv("ARBITER_EXTRA_RECIPES", both)  # for the training child
    settings.ARBITER_EXTRA_RECIPES = both
    catalog.register(dummy_recipe.ONLINE)
    try:
        base = tiny_model()
        rm = ModelArtifact.objects.create(name="rm", kind="reward_model", source="trained", path="models/rm", is_adapter=True)
        snapshot = make_snapshot(project, sft_rows(4, seed=1), sft_rows(2, seed=2), fmt="sft")
        with pytest.raises(ConfigError, match="reward_model: a echo_online run scores its rollouts with a reward model"):
            run_create(project=project, snapshot=snapshot, base_model=base, method="echo_online")
        with pytest.raises(ConfigError, match="reward_model: tiny is a causal language model, not a reward model"):
            run_create(project=project, snapshot=snapshot, base_model=base, method="echo_online", reward_model=base)

        page = client_for(owner).get(f"/training/projects/{project.slug}/new/").content.decode()
        assert re.search(r'data-needed-by="[^"]*\becho_online\b', page) and f'<option value="{rm.pk}">rm</option>' in page
        response = client_for(owner).post(f"/training/projects/{project.slug}/new/", {
            "snapshot": snapshot.pk, "base_model": base.pk, "method": "echo_online", "training": "lora", "reward_model": rm.pk})
        assert response.status_code == 302, response.content.decode()[-2000:]
        run = TrainingRun.objects.get(method="echo_online")
        assert run.reward_model == rm and run.status == TrainingRun.Status.SUCCEEDED, run.log_tail
        assert run.result["reward_model_path"].endswith("models/rm")
        assert client_for(owner).get(f"/api/training/runs/{run.pk}/").json()["reward_model"] == rm.pk
        # Methods that do not use one ignore a posted reward model.
        plain = run_create(project=project, snapshot=snapshot, base_model=base, method="echo", reward_model=rm)
        assert plain.reward_model is None
    finally:
        catalog.unregister("echo_online")


def test_it_names_on_the_dataset_card_which_method_reads_which_file():
    from annotation import hooks  # filled by training/apps.py at start

    methods = hooks.format_readers()
    assert methods["preference"] == ["Reward model (Bradley–Terry)", "DPO policy"]
    assert methods["sft"] == ["SFT policy (demonstrations)"] and methods["unpaired"] == ["KTO policy (ratings)"]
