"""The run page in a real chromium: charts drawn by static/js/training.js under the strict CSP,
updated live as the worker writes the row, and the page switching to results when the run ends."""
from __future__ import annotations

import pytest
from django.utils import timezone

from annotation.models import DatasetSnapshot
from tests.e2e.conftest import screenshot_path
from training.models import ModelArtifact, TrainingRun

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def setup(project, owner):
    snapshot = DatasetSnapshot.objects.create(project=project, version=1, status="ready", path="snapshots/demo/v1")
    base = ModelArtifact.objects.create(name="smol", kind="causal_lm", source="gguf", path="models/smol")
    return snapshot, base


def csp_violations(page) -> list[str]:
    messages: list[str] = []
    page.on("console", lambda msg: messages.append(msg.text) if "Content Security Policy" in msg.text else None)
    return messages


def test_it_draws_live_charts_and_shows_the_results_when_the_run_ends(page, login, project, owner, setup):
    snapshot, base = setup
    run = TrainingRun.objects.create(
        project=project, snapshot=snapshot, base_model=base, method="reward", status="running", worker="gpu@box", device="cpu",
        step=30, total_steps=120, heartbeat_at=timezone.now(), log_tail="step 30 loss 0.55",
        metrics=[{"step": 10, "loss": 0.69, "learning_rate": 1e-4}, {"step": 20, "loss": 0.62, "accuracy": 0.6, "learning_rate": 9e-5},
                 {"step": 30, "loss": 0.55, "accuracy": 0.7, "learning_rate": 8e-5}],
    )
    violations = csp_violations(page)
    login(owner, f"/training/runs/{run.pk}/")
    page.wait_for_selector("figure.chart-box svg polyline")
    titles = page.locator("svg.chart .chart-title").all_text_contents()
    assert titles == ["Loss", "Learning rate"]
    # Two accuracy points make no line: the figure says so and gives the values.
    few = page.locator('figure[data-chart="1"] .chart-few').text_content()
    assert few.startswith("Only 2 points so far, too few for a line.") and "0.600 (step 20)" in few
    loss_points = lambda: page.locator('polyline[data-series="loss"]').get_attribute("points").split()  # noqa: E731
    assert len(loss_points()) == 3
    # The worker writes more steps: the page follows without a reload.
    run.metrics = run.metrics + [{"step": 40, "loss": 0.4, "accuracy": 0.8, "learning_rate": 7e-5}]
    run.step, run.log_tail = 60, run.log_tail + "\nstep 40 loss 0.4"
    run.save()
    page.wait_for_function("() => document.querySelector('[data-field=steps]').textContent.includes('60 / 120')", timeout=15_000)
    assert len(loss_points()) == 4
    # The third accuracy point: now a line.
    assert page.locator("svg.chart .chart-title").all_text_contents() == ["Loss", "Accuracy", "Learning rate"]
    assert page.locator("[role=progressbar]").get_attribute("aria-valuenow") == "50"
    assert "step 40 loss 0.4" in page.locator("pre.log").text_content()
    assert "loss 0.4" in page.locator('figure[data-chart="0"] .legend').first.text_content()
    # It ends: the page reloads once and shows the results.
    run.status, run.step, run.finished_at = "succeeded", 120, timezone.now()
    run.result = {"test": {"accuracy": 0.9, "margin": {"count": 3, "mean": 1.0, "histogram": {"edges": [-1, 0, 1, 2], "counts": [1, 1, 1]}}}}
    run.save()
    page.wait_for_selector("text=Results on the test split", timeout=15_000)
    assert page.locator(".histogram .bar").count() == 3
    assert page.locator("[data-field=status]").first.text_content() == "succeeded"
    assert page.watch.errors == [] and violations == []


# Every text of every chart against every other: a title and a legend on one line overlapped on
# the GRPO page, whose charts are titled with the metric's whole label.
OVERLAPS = """() => [...document.querySelectorAll('svg.chart')].flatMap(svg => {
  const boxes = [...svg.querySelectorAll('text')].map(t => ({text: t.textContent, r: t.getBoundingClientRect()}));
  const out = [];
  boxes.forEach((a, i) => boxes.slice(i + 1).forEach(b => {
    if (a.r.left < b.r.right && b.r.left < a.r.right && a.r.top < b.r.bottom && b.r.top < a.r.bottom) out.push([a.text, b.text]);
  }));
  return out;
})"""


def test_a_grpo_runs_chart_titles_do_not_overlap_their_values(page, login, project, owner, setup):
    snapshot, base = setup
    metrics = [{"step": s, "score": 0.1 * s, "kl": 0.01 * s, "entropy": 2.0 - 0.1 * s, "loss": 0.5 / s, "response_length": 40 + s,
                "reward_std": 0.3, "clipfrac": 0.02} for s in range(1, 6)]
    run = TrainingRun.objects.create(project=project, snapshot=snapshot, base_model=base, method="grpo", status="running", worker="gpu@box",
                                     device="cpu", step=5, total_steps=50, heartbeat_at=timezone.now(), metrics=metrics)
    page.set_viewport_size({"width": 1366, "height": 768})
    login(owner, f"/training/runs/{run.pk}/")
    page.wait_for_selector("svg.chart polyline")
    assert "Reward-model score (weighted sum)" in page.locator("svg.chart .chart-title").all_text_contents()
    page.locator("[data-charts]").screenshot(path=screenshot_path("training-grpo-charts.png"))
    assert page.evaluate(OVERLAPS) == []
    assert page.watch.errors == []


def test_it_shows_only_the_chosen_methods_hyperparameters_and_starts_the_run(page, login, project, owner, setup):
    from config.celery import app

    # No gpu worker here: the message waits in the broker and the run stays queued (no inline training).
    # (tests/conftest.py's autouse fixture puts eager mode back afterwards.)
    app.conf.task_always_eager = False
    snapshot, base = setup
    violations = csp_violations(page)
    login(owner, f"/training/projects/{project.slug}/new/")
    assert page.locator('input[name="reward-per_device_train_batch_size"]').is_visible()
    assert not page.locator('input[name="dpo-beta"]').is_visible()
    page.check('input[name="method"][value="dpo"]')
    assert page.locator('input[name="dpo-beta"]').is_visible()
    assert not page.locator('input[name="reward-per_device_train_batch_size"]').is_visible()
    page.fill('input[name="dpo-beta"]', "0.25")
    page.select_option("select[name=snapshot]", str(snapshot.pk))
    page.select_option("select[name=base_model]", str(base.pk))
    page.click("form.run-form button[type=submit]")
    page.wait_for_url("**/training/runs/*/")
    run = TrainingRun.objects.get()
    assert run.method == "dpo" and run.config["beta"] == 0.25 and run.status == "queued"
    assert page.locator("[data-field=status]").first.text_content() == "queued"
    assert page.watch.errors == [] and violations == []


def test_it_scores_responses_on_a_reward_models_page(page, login, project, owner, setup, settings):
    from pathlib import Path

    from tests.training.test_api import build_tiny_reward_model

    snapshot, base = setup
    build_tiny_reward_model(Path(settings.ARTIFACT_ROOT) / "models" / "tiny-rm")
    run = TrainingRun.objects.create(project=project, snapshot=snapshot, base_model=base, method="reward", status="succeeded")
    rm = ModelArtifact.objects.create(name="tiny-rm", kind="reward_model", source="trained", path="models/tiny-rm", run=run, snapshot=snapshot)
    violations = csp_violations(page)
    login(owner, f"/training/models/{rm.pk}/")
    page.fill("textarea[name=prompt]", "question about apples")
    page.fill("textarea[name=responses]", " thanks very much\n\n whatever stop\n")
    page.click("form.score-form button[type=submit]")
    page.wait_for_selector("[data-scores] li >> nth=1", timeout=30_000)
    items = page.locator("[data-scores] li").all_text_contents()
    assert len(items) == 2 and "thanks very much" in items[0] and "whatever stop" in items[1]
    float(page.locator("[data-scores] li strong").first.text_content())
    assert page.watch.errors == [] and violations == []
