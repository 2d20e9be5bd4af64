"""The demo path of the loop: demo judgments -> snapshot -> reward model, on the CPU in minutes.

    python manage.py demo_train                     # uses the judgments raters have given so far
    python manage.py demo_train --simulate-raters   # first lets rater1/rater2 label what is left

Simulated raters go through the same lease and submit services as people do; their rule is
stated in every judgment's rationale ("prefers the response sampled at the lower temperature"),
so nobody mistakes the result for human preference data. The run is queued on the `gpu` queue:
watch it at the URL printed, with `scripts/start.sh` running.
"""
from __future__ import annotations

import re

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from annotation import kinds
from annotation.assignment import lease_next
from annotation.judgments import judgment_submit
from annotation.models import Judgment, Project

RULE = "simulated by demo_train: prefers the response sampled at the lower temperature"
_TEMPERATURE = re.compile(r"T=([0-9.]+)")


def _temperature(model_name: str) -> float:
    found = _TEMPERATURE.search(model_name or "")
    return float(found.group(1)) if found else 1.0


def _simulated_value(assignment) -> dict:
    item = assignment.item
    if assignment.is_gold and item.gold:
        return item.gold
    temps = {c.position: _temperature(c.model_name) for c in item.candidates.all()}
    return {"winner": min(temps, key=lambda p: (temps[p], p))}


class Command(BaseCommand):
    help = "Train a demo reward model on the demo binary project's judgments (CPU, minutes)."

    def add_arguments(self, parser):
        parser.add_argument("--project", default="demo-binary", help="A binary project (default: demo-binary).")
        parser.add_argument("--simulate-raters", action="store_true", help="Let rater1 and rater2 label what is left first, by a stated rule.")
        parser.add_argument("--base-model", default="", help="A registered model name (default: the MiniLM encoder, registered if needed).")
        parser.add_argument("--no-train", action="store_true", help="Stop after building the snapshot.")

    def handle(self, *args, project: str, simulate_raters: bool, base_model: str, no_train: bool, **options):
        proj = Project.objects.filter(slug=project).first()
        if proj is None:
            raise CommandError(f"--project: no project {project!r} (run `manage.py seed_demo` first)")
        if proj.kind != kinds.Kind.BINARY:
            raise CommandError(f"--project: {project} is a {proj.kind} project; the demo trains on a binary one")
        if simulate_raters:
            self._simulate(proj)
        pairs = Judgment.objects.filter(project=proj).exclude(value__winner__in=["tie", "both_bad"]).count()
        if pairs < 4:
            raise CommandError(f"{project} has {pairs} usable judgments: label some items first, or pass --simulate-raters")

        from annotation.exports.build import snapshot_build
        from annotation.exports.services import snapshot_create

        snapshot = snapshot_create(project=proj, options={"test_share": 0.2}, created_by=proj.created_by, enqueue=False)
        snapshot = snapshot_build(snapshot_id=snapshot.id) or snapshot
        snapshot.refresh_from_db()
        if snapshot.status != snapshot.Status.READY:
            raise CommandError(f"snapshot v{snapshot.version} failed: {snapshot.error}")
        counts = snapshot.manifest.get("counts", {})
        self.stdout.write(f"snapshot v{snapshot.version}: {snapshot.path} {counts.get('preference', '')}")
        if no_train:
            return

        from training.registry.models import ModelArtifact
        from training.registry.services import model_register_minilm
        from training.runs.services import ConfigError, run_create

        if base_model:
            model = ModelArtifact.objects.filter(name=base_model).first()
            if model is None:
                raise CommandError(f"--base-model: no registered model {base_model!r} (see `manage.py add_model`)")
        else:
            model = model_register_minilm()
        try:
            run = run_create(
                project=proj,
                snapshot=snapshot,
                base_model=model,
                method="reward",
                use_lora=False,
                config={"num_train_epochs": 4, "learning_rate": 5e-5, "per_device_train_batch_size": 8, "max_length": 256, "logging_steps": 1, "save_steps": 20},
                created_by=proj.created_by,
            )
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"reward-model run {run.pk} queued on the gpu worker: /training/runs/{run.pk}/"))

    def _simulate(self, project: Project) -> None:
        User = get_user_model()
        stored = 0
        for username in ("rater1", "rater2"):
            rater = User.objects.filter(username=username, memberships__project=project).first()
            if rater is None:
                continue
            while (assignment := lease_next(project=project, rater=rater)) is not None:
                judgment_submit(assignment=assignment, rater=rater, value=_simulated_value(assignment), rationale=RULE, duration_ms=1)
                stored += 1
        self.stdout.write(f"simulated raters stored {stored} judgments ({RULE})")
