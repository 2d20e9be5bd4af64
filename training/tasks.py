"""Celery tasks for training: thin, they load nothing heavy at import and call one function.
Routed by settings.CELERY_TASK_ROUTES: training runs to `gpu`; the short jobs (judge, evaluation,
generation, queue scoring, model registration) to `jobs`, so they never wait behind a run."""
from __future__ import annotations

from celery import shared_task


@shared_task(name="training.tasks.run_training", acks_late=True, reject_on_worker_lost=True)
def run_training(run_id: int) -> str:
    # The runner imports torch inside its functions; importing it here would load torch in the web process.
    from training.runs.runner import run_execute

    return run_execute(run_id=run_id, worker_name=run_training.request.hostname or "local")


# On `default`, not `gpu`: a stale check must not wait behind a training run, nor for a GPU worker.
@shared_task(name="training.tasks.runs_check_stale", queue="default")
def runs_check_stale() -> list[int]:
    from training.runs.services import runs_find_stale

    return runs_find_stale()


# On the `score` queue, not `gpu`: a score request must not wait behind a training run. The web
# process waits for the return value (training.registry.scoring.score_on_worker), so this task keeps its
# result; it is not redelivered after a crash, since nobody waits for it any more by then.
@shared_task(name="training.tasks.score_responses", queue="score", ignore_result=False, acks_late=False, reject_on_worker_lost=False)
def score_responses(model_id: int, prompt, responses: list, weights: dict | None = None) -> dict:
    from training.registry.scoring import score_request

    return score_request(model_id=model_id, prompt=prompt, responses=responses, weights=weights)


@shared_task(name="training.tasks.selection_score", acks_late=True, reject_on_worker_lost=True)
def selection_score(project_id: int) -> str:
    # Scores a project's pending items with its reward model (annotation/selection.py): jobs queue.
    from training.selection.job import priorities_score

    return priorities_score(project_id=project_id)


@shared_task(name="training.tasks.run_job", acks_late=True, reject_on_worker_lost=True)
def run_job(job_id: int) -> str:
    """An evaluation or a generation batch (training.loop.jobs): safe to deliver twice."""
    from training.loop.jobs import job_execute

    return job_execute(job_id=job_id, worker_name=run_job.request.hostname or "local")


@shared_task(name="training.tasks.jobs_check_stale", queue="default")
def jobs_check_stale() -> list[int]:
    from training.loop.jobs import jobs_find_stale

    return jobs_find_stale()


@shared_task(name="training.tasks.model_register", acks_late=True, reject_on_worker_lost=True)
def model_register(job_id: int) -> str:
    """A model registration asked for in the browser (training.registration): `jobs` queue."""
    from training.registration.job import registration_execute

    return registration_execute(job_id=job_id, worker_name=model_register.request.hostname or "local")


# The AI judge's tasks live with it (training/judge/tasks.py); importing them registers them on workers.
from training.judge import tasks as _judge_tasks  # noqa: E402,F401
