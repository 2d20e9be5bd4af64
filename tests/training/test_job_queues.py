"""Short jobs never wait behind a training run: judge, evaluation, generation, queue scoring and
model registration go to the `jobs` queue, training to `gpu`, and scripts/start.sh starts a worker
process of its own for `jobs`."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from training.runs.lifecycle import queue_of

ROOT = Path(__file__).resolve().parents[2]
SHORT = ["training.tasks.judge_run", "training.tasks.run_job", "training.tasks.selection_score", "training.tasks.model_register"]


@pytest.mark.dbless
def test_it_routes_short_jobs_to_jobs_and_training_to_gpu():
    from config.celery import app
    import training.tasks  # noqa: F401 - registers the tasks

    for name in SHORT:
        # The queue Celery itself picks from the settings, and the one the pages count in, agree.
        assert app.amqp.router.route({}, name)["queue"].name == "jobs", name
        assert queue_of(name) == "jobs", name
    assert app.amqp.router.route({}, "training.tasks.run_training")["queue"].name == "gpu"
    assert queue_of("training.tasks.run_training") == "gpu"
    for name in SHORT + ["training.tasks.run_training"]:
        assert name in app.tasks


def _workers(script: str) -> dict[str, list[str]]:
    """queue -> the arguments of the celery worker started for it (continuation lines joined)."""
    text = script.replace("\\\n", " ")
    workers = {}
    for line in text.splitlines():
        if re.match(r"\s*\S*celery -A config worker", line):
            args = shlex.split(line.split(">")[0])
            workers[args[args.index("-Q") + 1]] = args
    return workers


@pytest.mark.dbless
def test_it_starts_a_worker_process_of_its_own_for_jobs():
    workers = _workers((ROOT / "scripts/start.sh").read_text())
    # Its own process: a worker consuming gpu and jobs with one process would run a judge only
    # after the training run it holds.
    assert "jobs" in workers and "gpu" in workers
    assert all("jobs" not in queue.split(",") for queue in workers if queue != "jobs")
    jobs = workers["jobs"]
    assert jobs[jobs.index("-n") + 1].startswith("jobs@")
    assert "-c" in jobs


@pytest.mark.django_db
def test_it_sends_the_messages_to_those_queues(monkeypatch, django_capture_on_commit_callbacks):
    """The message of each kind of job goes out on the queue its route names (an explicit queue
    in apply_async would win over the route: that was how every job ended on `gpu`)."""
    from training.registration.models import RegistrationJob
    from training.runs import lifecycle
    from training.tasks import model_register, run_training

    sent = []
    for task in (model_register, run_training):
        monkeypatch.setattr(task, "apply_async", lambda args, queue, task=task: sent.append((task.name, queue)))
    job = RegistrationJob.objects.create(name="x", source="minilm")
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.enqueue(model_register, job)
        lifecycle.enqueue(run_training, job)
    assert sent == [("training.tasks.model_register", "jobs"), ("training.tasks.run_training", "gpu")]
