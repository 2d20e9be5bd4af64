"""The AI judge page of a project: its constitution, the judge jobs (progress, position bias,
cancel, resume) and the form that starts one.

GET  /training/projects/<slug>/judge/               researchers and managers (raters 403, outsiders 404)
POST /training/projects/<slug>/judge/start/         managers: model, template, limit
POST /training/projects/<slug>/judge/principles/    managers: the constitution, one principle per line
POST /training/judge/<id>/cancel/  and  /resume/    managers
"""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_POST

from annotation.models import Role
from annotation.selectors import project_get_for_user
from training.judge import prompts
from training.judge.judges import JudgeError
from training.judge.selectors import (
    judge_job_get_for_user,
    judge_job_state,
    judge_jobs_of_project,
    judge_model_find,
    judge_models_for_user,
)
from training.judge.services import judge_job_cancel, judge_job_create, judge_job_resume
from training.judge.models import JudgeJob
from training.runs.jobstate import job_state


def _page(slug: str) -> str:
    return reverse("training:judge", kwargs={"slug": slug})


@login_required
@require_GET
def judge_page(request, slug: str):
    project, membership = project_get_for_user(user=request.user, slug=slug, role=Role.RESEARCHER)
    jobs = list(judge_jobs_of_project(project=project)[:50])
    return render(
        request,
        "training/judge.html",
        {
            "project": project,
            "is_manager": membership.has_role(Role.MANAGER),
            # Where each stands: its place in line on the jobs queue, its phase and time left.
            "jobs": [{**judge_job_state(j), "state": job_state(j)} for j in jobs],
            "refresh": any(j.is_active for j in jobs),
            "models": judge_models_for_user(user=request.user),
            "templates": list(prompts.TEMPLATES),
            "template_preview": prompts.template_for(project).text,
            "principles": prompts.principles_list(project.principles),
        },
    )


@login_required
@require_POST
def judge_start(request, slug: str):
    project, _ = project_get_for_user(user=request.user, slug=slug, role=Role.MANAGER)
    model = judge_model_find(user=request.user, ref=request.POST.get("model", ""))
    raw_limit = request.POST.get("limit", "").strip()
    try:
        if model is None:
            raise JudgeError("model: choose a registered causal LM or reward model")
        limit = int(raw_limit) if raw_limit else None
        job = judge_job_create(project=project, model=model, template_name=request.POST.get("template", "default"), limit=limit, created_by=request.user)
    except ValueError as exc:
        messages.error(request, str(exc) if ":" in str(exc) else f"limit: not a whole number ({raw_limit})")
    else:
        messages.success(request, f"Judge job {job.pk} queued on the gpu worker: {model.name} over {limit or 'every'} item(s).")
    return redirect(_page(project.slug))


@login_required
@require_POST
def judge_principles(request, slug: str):
    project, _ = project_get_for_user(user=request.user, slug=slug, role=Role.MANAGER)
    text = request.POST.get("principles", "")
    if len(text) > 20000:
        messages.error(request, "principles: at most 20,000 characters")
    else:
        project.principles = text.strip()
        project.save(update_fields=["principles"])
        messages.success(request, f"Constitution saved: {len(prompts.principles_list(project.principles))} principle(s). New judge jobs use it (a new template key).")
    return redirect(_page(project.slug))


@login_required
@require_POST
def judge_cancel(request, pk: int):
    job = judge_job_get_for_user(user=request.user, job_id=pk, role=Role.MANAGER)
    judge_job_cancel(job=job)
    messages.success(request, f"Judge job {job.pk}: cancel requested; what it stored stays, and resume goes on from there.")
    return redirect(_page(job.project.slug))


@login_required
@require_POST
def judge_resume(request, pk: int):
    job = judge_job_get_for_user(user=request.user, job_id=pk, role=Role.MANAGER)
    if job.status not in (JudgeJob.Status.CANCELLED, JudgeJob.Status.FAILED):
        messages.error(request, f"Judge job {job.pk} is {job.status}: only a cancelled or failed job resumes.")
    else:
        done = job.done
        judge_job_resume(job=job)
        messages.success(request, f"Judge job {job.pk} queued again: it skips the {done} item(s) already answered.")
    return redirect(_page(job.project.slug))


urlpatterns = [
    path("projects/<slug:slug>/judge/", judge_page, name="judge"),
    path("projects/<slug:slug>/judge/start/", judge_start, name="judge-start"),
    path("projects/<slug:slug>/judge/principles/", judge_principles, name="judge-principles"),
    path("judge/<id:pk>/cancel/", judge_cancel, name="judge-cancel"),
    path("judge/<id:pk>/resume/", judge_resume, name="judge-resume"),
]
