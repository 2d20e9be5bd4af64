"""Run an AI judge over a project from the command line, in this process (no worker needed).

    python manage.py judge_project --project SLUG --model NAME [--limit N] [--template default] [--queue]

The model is a registered causal LM, policy or reward model (`add_model --smollm2` registers
SmolLM2-135M-Instruct). Without --queue the job runs here and prints its figures; with --queue it
goes to the gpu worker like a job started from the browser. Running it again with the same model
and template resumes: items already answered are skipped.
"""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from annotation.models import Project
from training.judge.judges import JudgeError
from training.judge.services import judge_job_create
from training.judge.models import JudgeJob
from training.registry.models import ModelArtifact


class Command(BaseCommand):
    help = "Run an AI judge (a registered causal LM or reward model) over a project's items."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project slug.")
        parser.add_argument("--model", required=True, help="A registered model: name or id.")
        parser.add_argument("--template", default="default")
        parser.add_argument("--limit", type=int, default=None, help="Only the first N items (by id).")
        parser.add_argument("--queue", action="store_true", help="Queue it on the gpu worker instead of running it here.")

    def handle(self, *args, project: str, model: str, template: str, limit: int | None, queue: bool, **options):
        proj = Project.objects.filter(slug=project).first()
        if proj is None:
            raise CommandError(f"--project: no project {project!r}")
        artifact = (ModelArtifact.objects.filter(pk=int(model)).first() if model.isdigit() else None) or ModelArtifact.objects.filter(name=model).first()
        if artifact is None:
            raise CommandError(f"--model: no registered model {model!r} (see `manage.py add_model --help`)")
        try:
            job = judge_job_create(project=proj, model=artifact, template_name=template, limit=limit, created_by=proj.created_by, enqueue=queue)
        except JudgeError as exc:
            raise CommandError(f"--{exc}") from None
        if queue:
            self.stdout.write(f"judge job {job.pk} queued on the gpu worker")
            return
        from training.judge.job import judge_execute

        judge_execute(job_id=job.pk, worker_name="judge_project")
        job.refresh_from_db()
        result = job.result or {}
        self.stdout.write(
            f"judge job {job.pk}: {job.status}; {job.done}/{job.total} items, {job.stored} judgments stored, {job.undecided} undecided;"
            f" first-position share {result.get('first_position_share')}, order flips {result.get('order_flip_share')}; answers {result.get('answers')}"
        )
        if job.status != JudgeJob.Status.SUCCEEDED:
            raise CommandError(job.error or job.status)
