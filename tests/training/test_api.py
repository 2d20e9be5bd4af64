"""Training over the API: models (list, detail, score) and runs (list, start, read, live state,
cancel). Managers start and cancel, researchers read, raters get 403, outsiders 404."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.utils import timezone

from annotation.models import DatasetSnapshot, Membership, Role
from training.models import ModelArtifact, TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(project, snapshot, base_model, owner):
    return TrainingRun.objects.create(project=project, snapshot=snapshot, base_model=base_model, method="reward", created_by=owner,
                                      status="running", step=5, total_steps=10, heartbeat_at=timezone.now(),
                                      metrics=[{"step": 5, "loss": 0.6}], log_tail="step 5")


def test_it_starts_a_run_for_managers_with_defaults_filled(api_for, project, snapshot, base_model, owner):
    response = api_for(owner).post("/api/training/runs/", {
        "project": project.slug, "snapshot": snapshot.pk, "base_model": "smol", "method": "dpo",
        "use_lora": True, "config": {"beta": 0.2, "loss_type": "ipo"}}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    run = TrainingRun.objects.get(pk=body["id"])
    assert body["status"] == "queued" and body["project"] == project.slug and body["created_by"] == "owner"
    assert run.config["beta"] == 0.2 and run.config["loss_type"] == "ipo" and run.config["sample_prompts"] == 8
    # By id as well as by name.
    response = api_for(owner).post("/api/training/runs/", {
        "project": project.slug, "snapshot": snapshot.pk, "base_model": str(base_model.pk), "method": "reward"}, format="json")
    assert response.status_code == 201 and response.json()["use_lora"] is True
    assert response.json()["evaluate_after"] is True  # a policy run's evaluation is queued unless asked not to
    response = api_for(owner).post("/api/training/runs/", {
        "project": project.slug, "snapshot": snapshot.pk, "base_model": "smol", "method": "dpo", "evaluate_after": False}, format="json")
    assert response.status_code == 201 and TrainingRun.objects.get(pk=response.json()["id"]).evaluate_after is False


def test_it_lets_only_managers_start_runs(api_for, project, snapshot, researcher, member, outsider):
    data = {"project": project.slug, "snapshot": snapshot.pk, "base_model": "smol", "method": "reward"}
    for user, code in ((researcher, 403), (member, 403), (outsider, 404), (None, 401)):
        assert api_for(user).post("/api/training/runs/", data, format="json").status_code == code
    assert not TrainingRun.objects.exists()


def test_it_names_the_bad_field(api_for, project, snapshot, base_model, owner, make_project):
    url, ok = "/api/training/runs/", {"project": project.slug, "snapshot": snapshot.pk, "base_model": "smol", "method": "reward"}
    cases = [
        ({"config": {"learning_rate": "fast"}}, "learning_rate", "'fast' is not a valid float"),
        ({"config": {"epochs": 3}}, "epochs", "unknown setting for reward"),
        ({"base_model": "gpt-9"}, "base_model", "no registered model 'gpt-9'"),
        ({"method": "nope"}, "method", "not a valid choice"),
    ]
    for change, field, message in cases:
        response = api_for(owner).post(url, {**ok, **change}, format="json")
        assert response.status_code == 400 and message in str(response.json()[field]), response.json()
    snapshot.status = "building"
    snapshot.save()
    response = api_for(owner).post(url, ok, format="json")
    assert response.status_code == 400 and "not ready" in str(response.json()["snapshot"])
    foreign = DatasetSnapshot.objects.create(project=make_project(slug="other"), version=1, status="ready", path="x")
    response = api_for(owner).post(url, {**ok, "snapshot": foreign.pk}, format="json")
    assert response.status_code == 400 and "no snapshot" in str(response.json()["snapshot"])
    encoder = ModelArtifact.objects.create(name="minilm", kind="encoder", source="local", path="models/minilm")
    response = api_for(owner).post(url, {**ok, "base_model": encoder.name, "method": "dpo"}, format="json")
    assert response.status_code == 400
    assert not TrainingRun.objects.exists()


def test_it_lists_and_shows_runs_by_role(api_for, run, project, owner, researcher, member, outsider):
    for user in (owner, researcher):
        assert [r["id"] for r in api_for(user).get("/api/training/runs/").json()["results"]] == [run.pk]
        body = api_for(user).get(f"/api/training/runs/{run.pk}/").json()
        assert body["percent"] == 50 and body["log_tail"] == "step 5" and body["base_model_name"] == "smol"
    for user in (member, outsider):
        assert api_for(user).get("/api/training/runs/").json()["results"] == []
    assert api_for(member).get(f"/api/training/runs/{run.pk}/").status_code == 403
    assert api_for(outsider).get(f"/api/training/runs/{run.pk}/").status_code == 404
    assert api_for(member).get(f"/api/training/runs/?project={project.slug}").status_code == 403
    assert api_for(outsider).get(f"/api/training/runs/?project={project.slug}").status_code == 404


def test_it_serves_the_live_state(api_for, run, researcher, outsider):
    body = api_for(researcher).get(f"/api/training/runs/{run.pk}/metrics/").json()
    assert body["metrics"] == [{"step": 5, "loss": 0.6}] and body["next"] == 1 and body["percent"] == 50
    assert api_for(researcher).get(f"/api/training/runs/{run.pk}/metrics/?since=1").json()["metrics"] == []
    assert api_for(researcher).get(f"/api/training/runs/{run.pk}/metrics/?since=x").status_code == 400
    assert api_for(outsider).get(f"/api/training/runs/{run.pk}/metrics/").status_code == 404


def test_it_cancels_for_managers_only(api_for, run, owner, researcher, member, outsider):
    url = f"/api/training/runs/{run.pk}/cancel/"
    for user, code in ((researcher, 403), (member, 403), (outsider, 404)):
        assert api_for(user).post(url).status_code == code
    body = api_for(owner).post(url).json()
    assert body["cancel_requested"] is True and body["status"] == "running"
    run.status = "succeeded"
    run.save()
    assert api_for(owner).post(url).json()["status"] == "succeeded"  # a finished run stays finished


def test_it_scopes_the_model_registry(api_for, run, base_model, project, researcher, member, outsider, make_user, make_project):
    trained = ModelArtifact.objects.create(name="rm", kind="reward_model", source="trained", path="models/rm",
                                           base_model=base_model, run=run, snapshot=run.snapshot)
    names = [m["name"] for m in api_for(researcher).get("/api/training/models/").json()["results"]]
    assert sorted(names) == ["rm", "smol"]
    body = api_for(researcher).get(f"/api/training/models/{trained.pk}/").json()
    assert body["project"] == project.slug and body["run"] == run.pk and body["base_model_name"] == "smol"
    elsewhere = make_user("elsewhere")
    Membership.objects.create(project=make_project(slug="other"), user=elsewhere, role=Role.RESEARCHER)
    assert [m["name"] for m in api_for(elsewhere).get("/api/training/models/").json()["results"]] == ["smol"]
    assert api_for(elsewhere).get(f"/api/training/models/{trained.pk}/").status_code == 404
    assert api_for(member).get("/api/training/models/").status_code == 403
    assert api_for(outsider).get(f"/api/training/models/{trained.pk}/").status_code == 404


def test_it_refuses_to_score_with_a_model_that_is_not_a_reward_model(api_for, project, base_model, researcher):
    response = api_for(researcher).post(f"/api/training/models/{base_model.pk}/score/", {"prompt": "hi", "responses": ["a"]}, format="json")
    assert response.status_code == 400 and "not a reward model" in str(response.json())


def build_tiny_reward_model(folder: Path) -> Path:
    """A 1-layer Qwen2 reward model from a config with the tests' word-level tokenizer."""
    import torch
    from transformers import Qwen2Config, Qwen2ForSequenceClassification

    from tests.training.conftest import build_tokenizer

    tokenizer = build_tokenizer()
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
                         num_key_value_heads=2, num_labels=1, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    Qwen2ForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_it_scores_responses_with_a_reward_model(api_for, settings, run, researcher, member, outsider):
    build_tiny_reward_model(Path(settings.ARTIFACT_ROOT) / "models" / "tiny-rm")
    rm = ModelArtifact.objects.create(name="tiny-rm", kind="reward_model", source="trained", path="models/tiny-rm", run=run, snapshot=run.snapshot)
    url = f"/api/training/models/{rm.pk}/score/"
    body = {"prompt": "question about apples", "responses": [" thanks very much", " whatever stop"]}  # as in the snapshot rows
    response = api_for(researcher).post(url, body, format="json")
    assert response.status_code == 200, response.content
    scores = response.json()["scores"]
    assert len(scores) == 2 and all(isinstance(s, float) and abs(s) < 1e6 for s in scores)
    assert api_for(researcher).post(url, body, format="json").json()["scores"] == scores  # deterministic
    chat = {"prompt": [{"role": "user", "content": "question about apples"}], "responses": ["thanks"]}
    assert len(api_for(researcher).post(url, chat, format="json").json()["scores"]) == 1
    assert api_for(researcher).post(url, {"prompt": "hi", "responses": []}, format="json").status_code == 400
    assert api_for(researcher).post(url, {"prompt": 5, "responses": ["a"]}, format="json").status_code == 400
    assert api_for(member).post(url, body, format="json").status_code == 403
    assert api_for(outsider).post(url, body, format="json").status_code == 404


def test_it_documents_the_training_api(client_for, owner):
    schema = client_for(owner).get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    for path in ("/api/training/models/{id}/score/", "/api/training/runs/{id}/cancel/", "/api/training/runs/{id}/metrics/"):
        assert path in schema


# The run trains in a child process (training/runs/launcher.py), which sees committed rows only.
@pytest.mark.django_db(transaction=True)
def test_it_runs_dpo_started_over_the_api_and_shows_its_samples(api_for, client_for, make_project, owner, tiny_model, make_snapshot,
                                                                django_capture_on_commit_callbacks):
    from tests.training.conftest import preference_rows

    project = make_project(slug="tiny-dpo")
    snapshot = make_snapshot(project, preference_rows(32, seed=1), preference_rows(8, seed=2, start=1000))
    tiny_model("tiny-policy")
    with django_capture_on_commit_callbacks(execute=True):
        response = api_for(owner).post("/api/training/runs/", {
            "project": project.slug, "snapshot": snapshot.pk, "base_model": "tiny-policy", "method": "dpo", "use_lora": True,
            "config": {"max_steps": 2, "per_device_train_batch_size": 8, "sample_prompts": 2, "sample_max_new_tokens": 4}}, format="json")
    assert response.status_code == 201
    body = api_for(owner).get(f"/api/training/runs/{response.json()['id']}/").json()
    assert body["status"] == "succeeded", body["error"] or body["log_tail"]
    assert body["output_model"] and body["result"]["test"]["test_pairs"] == 8
    page = client_for(owner).get(f"/training/runs/{body['id']}/samples/").content.decode()
    assert page.count('class="card sample"') == 2 and "question about" in page
    model = api_for(owner).get(f"/api/training/models/{body['output_model']}/").json()
    assert model["is_adapter"] and model["project"] == project.slug and model["run"] == body["id"]
