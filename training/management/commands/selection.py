"""Set or refresh how a project picks the next item (annotation/selection.py; the reward model is
training's: training/selection/).

    python manage.py selection --project SLUG                        # show the setting and the last scoring job
    python manage.py selection --project SLUG --order uncertain [--model NAME] [--weights "helpfulness=1, verbosity=-0.5"]
    python manage.py selection --project SLUG --refresh [--now]      # score pending items again (--now: here, not on the gpu worker)
"""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from annotation.models import Project
from annotation.selection import SelectionError, priorities_refresh, selection_set
from training.registry.models import ModelArtifact


class Command(BaseCommand):
    help = "Show, set or refresh the next-item order of a project (fewest, random, uncertain)."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True)
        parser.add_argument("--order", choices=Project.Selection.values)
        parser.add_argument("--model", help="reward model name (default: the newest trained on the project)")
        parser.add_argument("--weights", help="a multi-objective reward model's weights, name=weight, ... (default: the weights it was saved with)")
        parser.add_argument("--refresh", action="store_true", help="score the pending items again")
        parser.add_argument("--now", action="store_true", help="with --refresh: score in this process instead of queueing")

    def handle(self, *args, project: str, order: str | None, model: str | None, weights: str | None, refresh: bool, now: bool, **options):
        found = Project.objects.filter(slug=project).first()
        if found is None:
            raise CommandError(f"--project: no project with slug {project!r}")
        artifact = None
        if model:
            artifact = ModelArtifact.objects.filter(name=model).first()
            if artifact is None:
                raise CommandError(f"--model: no model named {model!r}")
        try:
            if order:
                selection_set(project=found, selection=order, model_id=artifact.pk if artifact else None, weights=weights)
            if refresh:
                if now:
                    from training.selection.job import priorities_score

                    self.stdout.write(priorities_score(project_id=found.pk))
                elif not priorities_refresh(project=found, reason="asked for"):
                    raise SelectionError("--refresh: the project does not order by a reward model's uncertainty")
        except SelectionError as exc:
            raise CommandError(str(exc)) from None
        found.refresh_from_db()
        self.stdout.write(f"{found.slug}: {found.get_selection_display()}; last scoring: {found.selection_status or 'never'}")
