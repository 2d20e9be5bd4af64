"""Celery tasks of the judge: thin. Task names start with training.tasks.; CELERY_TASK_ROUTES sends
judge_run to the `jobs` queue by name; training/tasks.py imports this module so workers register them."""
from __future__ import annotations

from celery import shared_task


@shared_task(name="training.tasks.judge_run", acks_late=True, reject_on_worker_lost=True)
def judge_run(job_id: int) -> str:
    from training.judge.job import judge_execute

    return judge_execute(job_id=job_id, worker_name=judge_run.request.hostname or "local")


@shared_task(name="training.tasks.judge_jobs_check_stale", queue="default")
def judge_jobs_check_stale() -> list[int]:
    from training.judge.services import judge_jobs_find_stale

    return judge_jobs_find_stale()
