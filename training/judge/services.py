"""The judge job seen from the web process: create, cancel, find stale jobs. No torch here."""
from __future__ import annotations

from datetime import datetime

from django.db import transaction

from annotation.kinds import Kind
from annotation.models import Project
from training.runs import lifecycle
from training.judge import answers, prompts
from training.judge.judges import JUDGE_KINDS, RM_KINDS, JudgeError
from training.judge.models import JudgeJob
from training.registry.models import ModelArtifact

Status = JudgeJob.Status


def judge_job_enqueue(*, job: JudgeJob) -> None:
    from training.judge.tasks import judge_run

    lifecycle.enqueue(judge_run, job)


# The worker slices the project's items with it: past 2**31 - 1 the database refuses the offset.
MAX_LIMIT = 2**31 - 1


def judge_job_create(
    *,
    project: Project,
    model: ModelArtifact,
    template_name: str = "default",
    limit: int | None = None,
    tie_band: float = answers.DEFAULT_TIE_BAND,
    created_by=None,
    enqueue: bool = True,
) -> JudgeJob:
    """Validate and queue a judge over the project's items. Raises JudgeError naming the field."""
    if model.kind not in JUDGE_KINDS:
        raise JudgeError(f"model: {model.name} is a {model.get_kind_display().lower()}; a judge is a causal LM, a policy or a reward model")
    if model.kind in RM_KINDS and project.kind == Kind.RATING:
        raise JudgeError("model: a reward model gives relative scores, not points of a rating scale; judge a rating project with a causal LM")
    if limit is not None and not 1 <= limit <= MAX_LIMIT:
        raise JudgeError(f"limit: must be 1..{MAX_LIMIT} (or empty for every item)")
    if not 0.0 <= tie_band < 0.5:
        raise JudgeError("tie_band: must be at least 0 and below 0.5")
    try:
        template = prompts.template_for(project, template_name)
    except prompts.TemplateError as exc:
        raise JudgeError(str(exc)) from exc
    key = template.key if model.kind not in RM_KINDS else "reward-model"
    with transaction.atomic():
        job = JudgeJob.objects.create(
            project=project,
            model=model,
            template_name=template.name if model.kind not in RM_KINDS else "reward-model",
            template_text=template.text if model.kind not in RM_KINDS else "(a reward model reads no prompt template: it scores each response after the prompt)",
            template_key=key,
            config={"limit": limit, "tie_band": tie_band},
            created_by=created_by,
        )
        if enqueue:
            judge_job_enqueue(job=job)
    return job


def judge_job_cancel(*, job: JudgeJob) -> JudgeJob:
    """A queued job is cancelled at once; a running one stops after its current batch (what it
    stored stays; running it again later resumes where it stopped)."""
    return lifecycle.cancel(job)


def judge_job_resume(*, job: JudgeJob) -> JudgeJob:
    """Queue a cancelled or failed job again: it skips the items it already answered."""
    with transaction.atomic():
        if JudgeJob.objects.filter(pk=job.pk, status__in=[Status.CANCELLED, Status.FAILED]).update(
            status=Status.QUEUED, cancel_requested=False, attempts=0, error="", finished_at=None
        ):
            judge_job_enqueue(job=job)
    job.refresh_from_db()
    return job


def judge_jobs_find_stale(*, now: datetime | None = None) -> list[int]:
    """Running jobs whose worker went silent: queued again (they resume), or failed once they have
    used up their attempts."""
    return lifecycle.recover_stale(
        JudgeJob, noun="judge job", now=now,
        requeue=lambda job: judge_job_enqueue(job=job),
        resumes_from=lambda job: "the first item it has not answered",
    )
