"""Send a generation batch to raters: K answers per prompt from one or more policies, imported
as items of a project.

    python manage.py generate_batch --project SLUG --prompts SLUG:vN|SLUG:latest|SLUG \
        --policy NAME[@TEMPERATURE][xK] [--policy ...] [--limit 100] [--max-new-tokens 64] [--reward-model NAME] [--here]

e.g. --policy my-dpo-policy@0.7 --policy smollm2-135m-instruct@0.7 (one answer each, for a binary
project), or --policy my-policy@0.3x2 --policy my-policy@1.0x2 (a ranking project of 4)."""
from __future__ import annotations

import re

from django.core.management.base import BaseCommand, CommandError

from annotation.models import Project
from training.loop.generation import GenerationError, Sampling
from training.loop.cli import job_run_here, model_named, prompts_arg

SPEC = re.compile(r"^(?P<name>[^@]+?)(?:@(?P<t>[0-9.]+))?(?:x(?P<k>[0-9]+))?$")


def policy_spec(value: str, *, max_new_tokens: int, seed: int, top_p: float):
    found = SPEC.match(value)
    if not found:
        raise CommandError(f"--policy {value!r}: write NAME, NAME@TEMPERATURE or NAME@TEMPERATUREx K")
    model = model_named(found["name"], "--policy")
    sampling = Sampling(temperature=float(found["t"] or 0.7), top_p=top_p, max_new_tokens=max_new_tokens, seed=seed)
    return model, int(found["k"] or 1), sampling


class Command(BaseCommand):
    help = "Generate K answers per prompt from registered policies and import them into a project for raters."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="The project the items go to.")
        parser.add_argument("--prompts", required=True, help="SLUG:vN or SLUG:latest (a snapshot's split) or SLUG (a project's items).")
        parser.add_argument("--split", default="test")
        parser.add_argument("--policy", action="append", required=True, help="NAME[@TEMPERATURE][xK]; repeat for more policies.")
        parser.add_argument("--limit", type=int, default=100)
        parser.add_argument("--max-new-tokens", type=int, default=64)
        parser.add_argument("--top-p", type=float, default=1.0)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--reward-model", help="Two policies, one answer each: also record this reward model's verdict on the same pairs.")
        parser.add_argument("--here", action="store_true", help="Run in this process instead of queueing on the gpu worker.")

    def handle(self, *args, **o):
        from training.loop.batches import batch_summary, generation_batch_create

        target = Project.objects.filter(slug=o["project"]).first()
        if target is None:
            raise CommandError(f"--project: no project {o['project']!r}")
        snapshot, prompts_project = prompts_arg(o["prompts"])
        policies = [policy_spec(v, max_new_tokens=o["max_new_tokens"], seed=o["seed"], top_p=o["top_p"]) for v in o["policy"]]
        try:
            job = generation_batch_create(project=target, policies=policies, snapshot=snapshot, prompts_project=prompts_project,
                                          split=o["split"], limit=o["limit"], created_by=target.created_by,
                                          reward_model=model_named(o["reward_model"], "--reward-model") if o["reward_model"] else None)
        except GenerationError as exc:
            raise CommandError(str(exc)) from None
        if not o["here"]:
            self.stdout.write(self.style.SUCCESS(f"generation batch {job.pk} queued on the gpu worker: /training/models/{job.policy_id}/"))
            return
        job_run_here(job, self.stdout)
        self.stdout.write(f"generation batch {job.pk}: {batch_summary(job.result, target.slug)}")

