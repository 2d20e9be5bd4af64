"""Honest results: accuracies with n and a 95% Wilson interval, test-split warnings with the share
that would give 50 rows, captions that agree with the numbers, train_loss over every attempt."""
from __future__ import annotations

from pathlib import Path

import pytest

from annotation.exports.split import suggested_test_share, split_size_warnings
from tests.training.conftest import preference_rows, write_snapshot_folder
from training.runs.results import accuracy_figures, display_rows
from training.core.stats import wilson


def test_it_gives_the_interval_scipy_gives_on_whole_counts():
    from scipy.stats import binomtest

    for k, n in [(0, 1), (1, 1), (0, 10), (5, 10), (7, 8), (10, 10), (81, 263), (999, 1000)]:
        for confidence in (0.9, 0.95, 0.99):
            ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
            assert wilson(k, n, confidence=confidence) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_it_gives_the_wilson_interval_by_hand_and_takes_half_wins():
    # 5 of 10, z = 1.96: centre (0.5 + 0.19208) / 1.38416 = 0.5, half 1.96 sqrt(0.025 + 0.009604) / 1.38416 = 0.26341
    low, high = wilson(5, 10)
    assert low == pytest.approx(0.23659, abs=1e-4) and high == pytest.approx(0.76341, abs=1e-4)
    # 0 of 10: the interval still has width (centre = half = 0.13877)
    assert wilson(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)
    # Ties count half: 4.5 of 10 lies between 4 and 5 of 10.
    assert wilson(4, 10) < wilson(4.5, 10) < wilson(5, 10)


def test_it_gives_every_accuracy_its_n_and_a_wilson_interval():
    lo, hi = wilson(7, 8)
    assert lo == pytest.approx(0.5291, abs=1e-4) and hi == pytest.approx(0.9776, abs=1e-4)
    figures = accuracy_figures({"accuracy": 0.0, "test_pairs": 1})
    # One pair wrong: the interval says how little that means.
    assert figures["accuracy"]["k"] == 0 and figures["accuracy"]["n"] == 1 and figures["accuracy"]["ci95"] == [0.0, 0.7935]
    rows = dict(display_rows({"accuracy": 0.75, "accuracy_n": 60, "loss": 0.123456}))
    assert rows == {"accuracy": "0.750 (45 of 60; 95% CI 0.63–0.84)", "loss": "0.1235"}
    assert dict(display_rows({"accuracy": 0.5}))["accuracy"] == "0.500 (n unknown: no interval)"
    # An online run ends with a policy evaluation: its win rate shows its counts and interval in one row.
    lo, hi = wilson(6, 10)
    rows = dict(display_rows({"n": 10, "wins": 5, "ties": 2, "losses": 3, "win_rate": 0.6, "ci_low": lo, "ci_high": hi, "kl_mean": 0.25}))
    assert rows == {"win_rate": "0.600 (n=10: 5 wins, 2 ties, 3 losses; 95% CI 0.31–0.83)", "kl_mean": "0.25"}


def test_it_suggests_the_test_share_that_gives_fifty_rows():
    assert suggested_test_share(total=400) == 0.13
    assert suggested_test_share(total=80) is None  # more than half the rows: collect more instead
    manifest = {"counts": {"preference": {"train": 360, "test": 40}, "sft": {"train": 900, "test": 100}, "unpaired": {"train": 50, "test": 3}},
                "options": {"test_share": 0.1}}
    warnings = split_size_warnings(manifest, formats=("preference", "sft", "unpaired"), nouns={"preference": "pairs"})
    assert warnings[0] == ("The preference test split holds 40 pairs at test share 0.1, fewer than 50: accuracies on it are rough "
                           "(wide intervals); a test share of about 0.13 would give 50.")
    assert len(warnings) == 2 and "only 53 rows in all" in warnings[1]


@pytest.mark.django_db
def test_it_warns_on_the_start_form_and_the_snapshot_form(client_for, owner, project, make_snapshot, base_model):
    make_snapshot(project, preference_rows(60, seed=1), preference_rows(12, seed=2))
    page = client_for(owner).get(f"/training/projects/{project.slug}/new/").content.decode()
    assert "The preference test split holds 12 pairs" in page and "a test share of about 0.7" not in page
    assert "only 72 pairs in all" in page
    page = client_for(owner).get(f"/projects/{project.slug}/datasets/").content.decode()
    assert "In the last snapshot (v1)" in page and "The preference test split holds 12 rows" in page


@pytest.mark.django_db
def test_it_counts_pairs_not_bars_in_the_histogram_caption(client_for, owner, project, snapshot, base_model):
    from training.models import TrainingRun

    # One pair, ranked wrong: the only bar straddles 0 (edges -0.8..0.2), yet the pair is behind.
    run = TrainingRun.objects.create(project=project, snapshot=snapshot, base_model=base_model, method="reward", status="succeeded",
                                     result={"test": {"test_pairs": 1, "accuracy": 0.0, "margin": {
                                         "count": 1, "mean": -0.3, "histogram": {"edges": [-0.8, 0.2], "counts": [1]}}}})
    page = client_for(owner).get(f"/training/runs/{run.pk}/").content.decode()
    assert "1 pair, 1 with the rejected response scored at or above the chosen one" in page
    assert "0.000 (0 of 1; 95% CI 0.00–0.79)" in page
    api = client_for(owner).get(f"/api/training/runs/{run.pk}/").json()
    assert api["accuracies"]["accuracy"] == {"value": 0.0, "k": 0, "n": 1, "ci95": [0.0, 0.7935], "method": "wilson"}


class FakeProgress:
    """The Progress protocol without a database: stops after the checkpoint at `stop_at`."""

    class Stopped(Exception):
        pass

    def __init__(self, stop_at: int | None = None):
        self.stop_at, self.stop, self.lines, self.points = stop_at, False, [], []

    def say(self, line, **fields):
        self.lines.append(line)

    def metrics(self, point):
        self.points.append(point)

    def steps(self, *, step, total=None):
        pass

    def checkpoint(self, *, path, step):
        if step == self.stop_at:
            self.stop = True

    def should_stop(self):
        return self.stop

    def check(self):
        if self.stop:
            raise self.Stopped()


def _ctx(tmp_path: Path, model: Path, snapshot: Path, progress, name: str):
    from training.recipes.common import progress_callback
    from training.recipes.catalog import TrainContext, get

    config = {"max_steps": 8, "save_steps": 4, "logging_steps": 1, "per_device_train_batch_size": 8, "max_length": 64, "learning_rate": 1e-2}
    return TrainContext(run_id=1, method="reward", config=config, use_lora=False, snapshot_dir=snapshot, base_model_path=model,
                        base_model_name="tiny", out_dir=tmp_path / name / "out", checkpoint_dir=tmp_path / name / "checkpoints",
                        work_dir=tmp_path / name, progress=progress, callbacks=[progress_callback(progress, get("reward").all_metrics())])


@pytest.mark.slow
def test_it_averages_train_loss_over_every_attempt_of_a_resumed_run(tmp_path):
    """Before: Trainer's train_loss after a resume averaged the second attempt's steps only (0.42
    here instead of 0.55). Same seed, same data: the resumed run's figure equals the whole run's."""
    from tests.training.conftest import build_tiny_model
    from training.recipes import reward

    model = build_tiny_model(tmp_path / "model")
    snapshot = write_snapshot_folder(tmp_path / "snap", preference_rows(64, seed=3), preference_rows(8, seed=4))
    whole = reward.train(_ctx(tmp_path, model, snapshot, FakeProgress(), "whole"))
    with pytest.raises(FakeProgress.Stopped):
        reward.train(_ctx(tmp_path, model, snapshot, FakeProgress(stop_at=4), "cut"))
    resumed = reward.train(_ctx(tmp_path, model, snapshot, FakeProgress(), "cut"))
    assert resumed["resumed_from_step"] == 4 and resumed["global_step"] == whole["global_step"] == 8
    assert resumed["train_loss"] == pytest.approx(whole["train_loss"], rel=1e-4), (resumed["train_loss"], whole["train_loss"])
