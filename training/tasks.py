"""Celery tasks for training: thin, they load nothing heavy at import and call one function.
Routed to the `gpu` queue by settings (CELERY_TASK_ROUTES: training.tasks.*)."""
from __future__ import annotations

from celery import shared_task


@shared_task(name="training.tasks.run_training", acks_late=True, reject_on_worker_lost=True)
def run_training(run_id: int) -> str:
    # The runner imports torch inside its functions; importing it here would load torch in the web process.
    from training.runner import run_execute

    return run_execute(run_id=run_id, worker_name=run_training.request.hostname or "local")


# On `default`, not `gpu`: a stale check must not wait behind a training run, nor for a GPU worker.
@shared_task(name="training.tasks.runs_check_stale", queue="default")
def runs_check_stale() -> list[int]:
    from training.runs import runs_find_stale

    return runs_find_stale()


@shared_task(name="training.tasks.run_job", acks_late=True, reject_on_worker_lost=True)
def run_job(job_id: int) -> str:
    """An evaluation or a generation batch (training.jobs): safe to deliver twice."""
    from training.jobs import job_execute

    return job_execute(job_id=job_id, worker_name=run_job.request.hostname or "local")
