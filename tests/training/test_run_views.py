"""Training pages: managers start and cancel runs, researchers watch, raters get 403 and
outsiders 404; the run page shows progress, live metrics, the log, the error and the results."""
from __future__ import annotations

import re

import pytest
from django.utils import timezone

from annotation.models import DatasetSnapshot
from training.models import ModelArtifact, TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(project, snapshot, base_model, owner):
    return TrainingRun.objects.create(
        project=project, snapshot=snapshot, base_model=base_model, method="reward", created_by=owner,
        status=TrainingRun.Status.RUNNING, worker="gpu@box", device="cpu", step=30, total_steps=120,
        heartbeat_at=timezone.now(), log_tail="step 25 loss 0.61\nstep 30 loss 0.55",
        metrics=[{"step": 10, "loss": 0.69, "learning_rate": 1e-4}, {"step": 20, "loss": 0.62, "accuracy": 0.6}, {"step": 30, "loss": 0.55}],
    )


def test_it_lists_only_runs_of_the_users_projects(client_for, run, owner, researcher, member, outsider, make_project, snapshot, base_model):
    other = make_project(slug="other")
    other.memberships.filter(user=owner).delete()
    hidden = TrainingRun.objects.create(project=other, snapshot=DatasetSnapshot.objects.create(project=other, version=1, status="ready", path="x"),
                                        base_model=base_model, method="dpo")
    page = client_for(owner).get("/training/").content.decode()
    assert f"/training/runs/{run.pk}/" in page and f"/training/runs/{hidden.pk}/" not in page
    assert "/training/projects/demo/new/" in page  # a manager may start one here
    page = client_for(researcher).get("/training/").content.decode()
    assert f"/training/runs/{run.pk}/" in page and "/training/projects/demo/new/" not in page
    for user in (member, outsider):
        assert f"/training/runs/{run.pk}/" not in client_for(user).get("/training/").content.decode()


def test_it_shows_a_run_to_managers_and_researchers_only(client_for, run, owner, researcher, member, outsider, staff):
    for user in (owner, researcher, staff):
        response = client_for(user).get(f"/training/runs/{run.pk}/")
        assert response.status_code == 200
        page = response.content.decode()
        assert "30 / 120 steps (25%)" in page and "step 30 loss 0.55" in page and "gpu@box" in page
        assert ('action="/training/runs/%d/cancel/"' % run.pk in page) == (user != researcher)
    assert client_for(member).get(f"/training/runs/{run.pk}/").status_code == 403
    assert client_for(outsider).get(f"/training/runs/{run.pk}/").status_code == 404
    assert client_for(outsider).get("/training/runs/999999/").status_code == 404
    assert client_for(None).get(f"/training/runs/{run.pk}/").status_code == 302  # to the login page


def test_it_keeps_scripts_out_of_the_page_under_a_strict_csp(client_for, run, owner, project):
    for url in (f"/training/runs/{run.pk}/", f"/training/projects/{project.slug}/new/", "/training/", "/training/models/"):
        response = client_for(owner).get(url)
        assert "script-src 'self'" in response["Content-Security-Policy"]
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", response.content.decode(), re.S)
        assert all('src="/static/' in attrs and not body.strip() for attrs, body in scripts), scripts
        assert not re.search(r"\son(click|load|submit|change)=", response.content.decode())
    assert 'src="/static/js/training.js"' in client_for(owner).get(f"/training/runs/{run.pk}/").content.decode()
    js = client_for(owner).get("/static/js/training.js")
    assert js.status_code == 200
    assert "data-metrics-url" in b"".join(js.streaming_content if js.streaming else [js.content]).decode()


def test_it_serves_the_live_state_with_only_new_metric_points(client_for, run, researcher, member, outsider):
    state = client_for(researcher).get(f"/training/runs/{run.pk}/metrics.json").json()
    assert state["status"] == "running" and state["percent"] == 25 and state["next"] == 3
    assert [p["loss"] for p in state["metrics"]] == [0.69, 0.62, 0.55]
    run.metrics = run.metrics + [{"step": 40, "loss": 0.5}]
    run.step = 40
    run.save()
    state = client_for(researcher).get(f"/training/runs/{run.pk}/metrics.json?since=3").json()
    assert state["metrics"] == [{"step": 40, "loss": 0.5}] and state["step"] == 40 and state["next"] == 4
    assert client_for(member).get(f"/training/runs/{run.pk}/metrics.json").status_code == 403
    assert client_for(outsider).get(f"/training/runs/{run.pk}/metrics.json").status_code == 404


def test_it_starts_a_run_from_the_form_with_the_recipe_defaults(client_for, project, snapshot, base_model, owner):
    page = client_for(owner).get(f"/training/projects/{project.slug}/new/").content.decode()
    assert f'<option value="{snapshot.pk}"' in page and "smol (causal language model)" in page
    assert 'name="reward-per_device_train_batch_size" value="8"' in page  # defaults shown
    assert 'name="dpo-beta" value="0.1"' in page
    assert "Peak learning rate" in page  # help text from the recipe
    response = client_for(owner).post(f"/training/projects/{project.slug}/new/", {
        "snapshot": snapshot.pk, "base_model": base_model.pk, "method": "reward", "training": "full",
        "reward-num_train_epochs": "3", "reward-learning_rate": "", "reward-use_margin": "true",
        "dpo-beta": "0.5",  # another method's fields are ignored
    })
    run = TrainingRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/training/runs/{run.pk}/"
    assert run.status == "queued" and run.method == "reward" and not run.use_lora and run.created_by == owner
    assert run.config["num_train_epochs"] == 3.0 and run.config["use_margin"] is True
    assert run.config["learning_rate"] is None and run.config["per_device_train_batch_size"] == 8
    assert "beta" not in run.config
    page = client_for(owner).get(response["Location"]).content.decode()
    assert "queued" in page and "Cancel run" in page


def test_it_names_the_bad_hyperparameter_and_creates_nothing(client_for, project, snapshot, base_model, owner):
    response = client_for(owner).post(f"/training/projects/{project.slug}/new/", {
        "snapshot": snapshot.pk, "base_model": base_model.pk, "method": "dpo", "training": "lora", "dpo-beta": "strong",
    })
    assert response.status_code == 400
    assert "beta: &#x27;strong&#x27; is not a valid float" in response.content.decode()
    assert 'name="dpo-beta" value="strong"' in response.content.decode()  # what was typed stays
    assert not TrainingRun.objects.exists()


def test_it_offers_only_ready_snapshots_of_the_project(client_for, project, make_project, snapshot, base_model, owner):
    DatasetSnapshot.objects.create(project=project, version=2, status="building")  # not offered: still building
    other = DatasetSnapshot.objects.create(project=make_project(slug="elsewhere"), version=1, status="ready", path="x")
    page = client_for(owner).get(f"/training/projects/{project.slug}/new/").content.decode()
    choices = re.search(r'<select name="snapshot".*?</select>', page, re.S).group(0)
    assert re.findall(r'<option value="(\d+)"', choices) == [str(snapshot.pk)]
    response = client_for(owner).post(f"/training/projects/{project.slug}/new/", {
        "snapshot": other.pk, "base_model": base_model.pk, "method": "reward", "training": "lora"})
    assert response.status_code == 400 and not TrainingRun.objects.exists()


def test_it_starts_a_run_from_a_snapshot_shared_into_the_project(client_for, project, make_project, base_model, owner, outsider, make_user):
    # A snapshot of another project that includes this project's data (DatasetSnapshot.extra_projects).
    source = make_project(slug="source")
    shared = DatasetSnapshot.objects.create(project=source, version=4, status="ready", path="snapshots/source/v4")
    shared.extra_projects.add(project)
    own = DatasetSnapshot.objects.create(project=project, version=1, status="ready", path="snapshots/demo/v1")
    url = f"/training/projects/{project.slug}/new/"
    page = client_for(owner).get(url).content.decode()
    choices = re.search(r'<select name="snapshot".*?</select>', page, re.S).group(0)
    assert re.findall(r'<option value="(\d+)"', choices) == [str(own.pk), str(shared.pk)]  # own first: still the default
    assert "source v4 (shared)" in choices
    response = client_for(owner).post(url, {"snapshot": shared.pk, "base_model": base_model.pk, "method": "dpo", "training": "lora"})
    run = TrainingRun.objects.get()
    assert response.status_code == 302 and run.project == project and run.snapshot == shared

    # Not shared with a third project: not offered there, and refused when posted anyway.
    third = make_project(slug="third")
    page = client_for(owner).get(f"/training/projects/{third.slug}/new/").content.decode()
    assert re.findall(r'<option value="(\d+)"', re.search(r'<select name="snapshot".*?</select>', page, re.S).group(0)) == []
    response = client_for(owner).post(f"/training/projects/{third.slug}/new/", {
        "snapshot": shared.pk, "base_model": base_model.pk, "method": "dpo", "training": "lora"})
    assert response.status_code == 400 and TrainingRun.objects.count() == 1
    # An outsider sees neither the form nor the snapshot.
    assert client_for(outsider).get(url).status_code == 404
    assert client_for(outsider).post(url, {"snapshot": shared.pk, "base_model": base_model.pk, "method": "dpo",
                                           "training": "lora"}).status_code == 404
    assert TrainingRun.objects.count() == 1


def test_it_lets_only_managers_start_runs(client_for, project, snapshot, base_model, researcher, member, outsider):
    data = {"snapshot": snapshot.pk, "base_model": base_model.pk, "method": "reward", "training": "lora"}
    url = f"/training/projects/{project.slug}/new/"
    for user, code in ((researcher, 403), (member, 403), (outsider, 404)):
        assert client_for(user).get(url).status_code == code
        assert client_for(user).post(url, data).status_code == code
    assert not TrainingRun.objects.exists()


def test_it_cancels_for_managers_only(client_for, run, owner, researcher, member, outsider):
    url = f"/training/runs/{run.pk}/cancel/"
    for user, code in ((researcher, 403), (member, 403), (outsider, 404)):
        assert client_for(user).post(url).status_code == code
    run.refresh_from_db()
    assert not run.cancel_requested
    assert client_for(owner).get(url).status_code == 405
    response = client_for(owner).post(url, follow=True)
    assert "will stop within a few steps" in response.content.decode()
    run.refresh_from_db()
    assert run.cancel_requested and run.status == "running"  # the worker's callback stops it
    run.status = "queued"
    run.save()
    client_for(owner).post(url)
    run.refresh_from_db()
    assert run.status == "cancelled"


def test_it_shows_the_error_in_words(client_for, run, owner):
    run.status, run.error = "failed", "worker gpu@box stopped sending heartbeats 300 s ago and the run has used all 3 attempts"
    run.save()
    page = client_for(owner).get(f"/training/runs/{run.pk}/").content.decode()
    assert "The run failed:" in page and "stopped sending heartbeats 300 s ago" in page
    assert "Cancel run" not in page


def test_it_shows_the_results_margin_distribution_and_the_model(client_for, run, owner, base_model):
    # The shape training.runs.runner writes: test-split metrics with a margin distribution.
    run.status, run.step = "succeeded", 120
    run.result = {"train_loss": 0.41, "global_step": 120, "train_seconds": 33.2, "test": {
        "test_pairs": 8, "accuracy": 0.875, "note": "a word",
        "margin": {"count": 8, "mean": 1.2, "std": 1.0, "p5": -0.4, "p50": 1.2, "p95": 2.8,
                   "histogram": {"edges": [-1.0, 0.0, 1.0, 2.0, 3.0], "counts": [1, 2, 3, 2]}}}}
    run.save()
    trained = ModelArtifact.objects.create(name="rm-1", kind="reward_model", source="trained", path="models/rm-1",
                                           base_model=base_model, run=run, snapshot=run.snapshot)
    page = client_for(owner).get(f"/training/runs/{run.pk}/").content.decode()
    # An accuracy carries its n and a 95% Wilson interval (7 of 8: 0.53 to 0.98).
    assert "<th>accuracy</th><td>0.875 (7 of 8; 95% CI 0.53–0.98)</td>" in page
    assert "<td>a word</td>" in page and "<th>train_loss</th><td>0.41</td>" in page
    assert "Reward margin distribution" in page and "8 pairs, 1 with the rejected response scored at or above the chosen one" in page
    assert page.count('class="bar') == 4 and "p50 1.200" in page
    assert f"/training/models/{trained.pk}/" in page and "120 / 120 steps (100%)" in page


def test_it_draws_a_histogram_from_raw_margins(client_for, run, owner):
    run.status, run.result = "succeeded", {"margins": [-0.5, 0.2, 0.4, 1.0, 1.5, 2.0, 2.2, 3.0]}
    run.save()
    page = client_for(owner).get(f"/training/runs/{run.pk}/").content.decode()
    assert page.count('class="bar') == 20 and "8 pairs" in page


def test_it_shows_dpo_samples_beside_the_reference(client_for, run, researcher, member):
    run.method, run.status = "dpo", "succeeded"
    run.result = {"accuracy": 0.9, "samples": [{"prompt": "Say hi", "policy": "Hello, thanks!", "reference": "whatever"}]}
    run.save()
    page = client_for(researcher).get(f"/training/runs/{run.pk}/").content.decode()
    assert f"/training/runs/{run.pk}/samples/" in page
    page = client_for(researcher).get(f"/training/runs/{run.pk}/samples/").content.decode()
    assert "Say hi" in page and "Hello, thanks!" in page and "whatever" in page
    assert page.index("Trained policy") < page.index("Hello, thanks!") < page.index("Reference") < page.index("whatever")
    assert client_for(member).get(f"/training/runs/{run.pk}/samples/").status_code == 403


def test_it_links_samples_written_beside_the_model_only_when_there_are_some(client_for, run, researcher, base_model, settings):
    from pathlib import Path

    run.method, run.status, run.result = "dpo", "succeeded", {"accuracy": 0.9}
    run.save()
    ModelArtifact.objects.create(name="policy-1", kind="policy", source="trained", path="models/policy-1", base_model=base_model, run=run)
    folder = Path(settings.ARTIFACT_ROOT) / "models" / "policy-1"
    url = f"/training/runs/{run.pk}/samples/"
    assert url not in client_for(researcher).get(f"/training/runs/{run.pk}/").content.decode()  # no folder at all
    folder.mkdir(parents=True)
    (folder / "samples.jsonl").write_text("")
    assert url not in client_for(researcher).get(f"/training/runs/{run.pk}/").content.decode()  # an empty file
    (folder / "samples.jsonl").write_text('{"prompt": "Say hi", "policy": "Hello, thanks!", "reference": "whatever"}\n')
    assert url in client_for(researcher).get(f"/training/runs/{run.pk}/").content.decode()
    page = client_for(researcher).get(url).content.decode()
    assert "Say hi" in page and "Hello, thanks!" in page and "whatever" in page


# The run trains in a child process (training/runs/launcher.py), which sees committed rows only.
@pytest.mark.django_db(transaction=True)
def test_it_trains_a_tiny_reward_model_started_from_the_form(client_for, make_project, owner, tiny_model, make_snapshot,
                                                             django_capture_on_commit_callbacks):
    from tests.training.conftest import preference_rows

    project = make_project(slug="tiny")
    snapshot = make_snapshot(project, preference_rows(64, seed=1), preference_rows(16, seed=2, start=1000))
    base = tiny_model("tiny-base")
    # Celery runs eagerly in tests: the run trains inline once the row is committed.
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(owner).post(f"/training/projects/{project.slug}/new/", {
            "snapshot": snapshot.pk, "base_model": base.pk, "method": "reward", "training": "full",
            "reward-max_steps": "4", "reward-logging_steps": "1", "reward-per_device_train_batch_size": "16"})
    run = TrainingRun.objects.get()
    assert response.status_code == 302 and run.status == "succeeded", run.error or run.log_tail
    page = client_for(owner).get(f"/training/runs/{run.pk}/").content.decode()
    assert "4 / 4 steps (100%)" in page and "Results on the test split" in page and "<th>accuracy</th>" in page
    assert "Reward margin distribution" in page and "16 pairs" in page
    state = client_for(owner).get(f"/training/runs/{run.pk}/metrics.json").json()
    assert state["finished"] and len(state["metrics"]) >= 3 and "loss" in state["metrics"][0]
    model = run.output_model
    assert model.kind == "reward_model" and model.base_model == base and model.snapshot == snapshot
    assert f"/training/models/{model.pk}/" in page
