"""A worker writes only while it owns the run (DESIGN.md, "Training"). A worker presumed dead
(its heartbeat went stale, another worker took the run over as attempt 2) that comes back must
not overwrite the new owner's files: it writes no checkpoint into the folder the new owner
resumes from, and its final model stays in its own attempt folder, never renamed into place."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from tests.training.conftest import preference_rows
from training.models import TrainingRun
from training.runs.runner import Progress, RunLost, _train, output_dir, run_claim

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CONFIG = {"max_steps": 4, "per_device_train_batch_size": 4, "learning_rate": 1e-2, "max_length": 48, "logging_steps": 1000, "save_steps": 2}


@pytest.fixture
def zombie(project, tiny_model, make_snapshot):
    """A run held by w1 (attempt 1), with w1's progress as its training process has it, and a
    `take_over()` that makes w2 the owner (attempt 2) the way the stale check and a claim do."""
    base = tiny_model()
    snapshot = make_snapshot(project, preference_rows(24, seed=5), preference_rows(4, seed=6))
    run = TrainingRun.objects.create(project=project, snapshot=snapshot, base_model=base, method="reward", use_lora=False, config=CONFIG)
    assert run_claim(run_id=run.pk, worker_name="w1") == 1
    run = TrainingRun.objects.select_related("snapshot", "base_model").get(pk=run.pk)
    progress = Progress(run, attempt=1, worker="w1", beat=False)

    def take_over() -> Path:
        TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
        assert run_claim(run_id=run.pk, worker_name="w2") == 2
        # w2's finished model, already in place.
        final = output_dir(run.pk)
        final.mkdir(parents=True)
        (final / "w2-was-here").write_text("the resumed run's model")
        return final

    return run, progress, take_over


def test_it_keeps_a_presumed_dead_worker_out_of_the_published_model_folder(zombie, monkeypatch):
    run, progress, take_over = zombie
    from training.recipes import reward

    original = reward.evaluate
    taken = {}

    def evaluate_slowly(**kwargs):  # w1 is presumed dead while it evaluates, the slowest silent phase
        taken["final"] = take_over()
        return original(**kwargs)

    monkeypatch.setattr(reward, "evaluate", evaluate_slowly)
    with pytest.raises(RunLost):
        _train(run, progress)
    final = taken["final"]
    assert sorted(p.name for p in final.iterdir()) == ["w2-was-here"], "w1 wrote into the published model folder"
    row = TrainingRun.objects.get(pk=run.pk)
    assert row.status == TrainingRun.Status.RUNNING and row.attempts == 2 and row.worker == "w2"


def test_it_keeps_a_presumed_dead_worker_from_writing_checkpoints(zombie, monkeypatch, settings):
    run, progress, take_over = zombie
    from transformers import TrainerCallback

    from training.recipes import reward

    class TakeOverAfterFirstStep(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 1:
                take_over()

    original = reward.trainer_build

    def build(**kwargs):
        trainer = original(**kwargs)
        trainer.add_callback(TakeOverAfterFirstStep())
        return trainer

    monkeypatch.setattr(reward, "trainer_build", build)
    with pytest.raises(RunLost):
        _train(run, progress)
    checkpoints = Path(settings.ARTIFACT_ROOT) / "runs" / str(run.pk) / "checkpoints"
    written = sorted(p.name for p in checkpoints.glob("checkpoint-*")) if checkpoints.exists() else []
    assert written == [], f"w1 wrote {written} where w2 resumes from"
    assert TrainingRun.objects.get(pk=run.pk).checkpoint_path == ""
