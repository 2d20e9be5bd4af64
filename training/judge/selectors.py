"""Reads of judge jobs and judge models, scoped by project membership (annotation.selectors)."""
from __future__ import annotations

from django.db.models import QuerySet

from annotation.models import Project, Role
from training.judge.judges import JUDGE_KINDS
from training.judge.models import JudgeJob
from training.registry.models import ModelArtifact
from training.core.access import row_get_for_user
from training.registry.selectors import model_list_for_user


def judge_jobs_of_project(*, project: Project) -> QuerySet[JudgeJob]:
    return JudgeJob.objects.filter(project=project).select_related("model", "created_by")


def judge_job_get_for_user(*, user, job_id: int, role: str = Role.RESEARCHER) -> JudgeJob:
    """The job, if the user holds `role` on its project: Http404 for outsiders, 403 for too low a role."""
    jobs = JudgeJob.objects.select_related("model", "created_by")
    return row_get_for_user(jobs, user=user, pk=job_id, role=role, what="judge job")


def judge_models_for_user(*, user) -> QuerySet[ModelArtifact]:
    """Models the user may judge with: visible to them (training.runs.selectors), of a judge kind."""
    return model_list_for_user(user=user).filter(kind__in=JUDGE_KINDS).order_by("name")


def judge_model_find(*, user, ref: str) -> ModelArtifact | None:
    """A judge model by id or name, among those the user may use."""
    ref = (ref or "").strip()
    models = judge_models_for_user(user=user)
    return (models.filter(pk=int(ref)).first() if ref.isdigit() else None) or models.filter(name=ref).first()


def judge_job_state(job: JudgeJob) -> dict:
    """What the page and the API show of a job."""
    result = job.result or {}
    return {
        "id": job.pk,
        "project": job.project.slug,
        "model": job.model.name,
        "model_kind": job.model.kind,
        "template": job.template_key,
        "template_text": job.template_text,
        "config": job.config,
        "status": job.status,
        "cancel_requested": job.cancel_requested,
        "worker": job.worker,
        "attempts": job.attempts,
        "total": job.total,
        "done": job.done,
        "percent": job.percent,
        "stored": job.stored,
        "undecided": job.undecided,
        "first_position_share": result.get("first_position_share"),
        "order_flip_share": result.get("order_flip_share"),
        "pairs_judged": result.get("pairs", 0),
        "answers": result.get("answers", {}),
        "error": job.error,
        "heartbeat_at": job.heartbeat_at.isoformat() if job.heartbeat_at else None,
        "created_by": job.created_by.get_username() if job.created_by_id else None,
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }
