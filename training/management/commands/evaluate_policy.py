"""Evaluate a policy against a reference on held-out prompts, judged by a reward model.

    python manage.py evaluate_policy --policy NAME [--reference NAME] --reward-model NAME \
        --prompts SLUG:vN|SLUG:latest|SLUG [--limit 64] [--temperature 0.7] [--here]

Queued on the gpu worker (watch it on the policy's page), or run in this process with --here."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from training.loop.generation import GenerationError, Sampling
from training.loop.cli import job_run_here, model_named, prompts_arg


def print_evaluation(stdout, result: dict) -> None:
    stdout.write(
        f"RM win rate of {result['policy']} over {result['reference']}: {result['win_rate']:.3f} "
        f"(95% CI {result['ci_low']:.3f}-{result['ci_high']:.3f}, n={result['n']}, ties {result['ties']}); "
        f"mean KL {result['kl_mean']:.3f} nats; mean length {result['policy_length_mean']:.1f} vs {result['reference_length_mean']:.1f} tokens"
    )


class Command(BaseCommand):
    help = "Evaluate a policy against a reference with a reward model on held-out prompts."

    def add_arguments(self, parser):
        parser.add_argument("--policy", required=True)
        parser.add_argument("--reference", default="", help="Default: the policy's base model.")
        parser.add_argument("--reward-model", required=True)
        parser.add_argument("--prompts", required=True, help="SLUG:vN or SLUG:latest (a snapshot's split) or SLUG (a project's items).")
        parser.add_argument("--split", default="test")
        parser.add_argument("--limit", type=int, default=64, help="At most this many prompts.")
        parser.add_argument("--temperature", type=float, default=0.7)
        parser.add_argument("--max-new-tokens", type=int, default=64)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--here", action="store_true", help="Run in this process instead of queueing on the gpu worker.")

    def handle(self, *args, **o):
        from training.loop.evaluation import evaluation_create

        policy = model_named(o["policy"], "--policy")
        reference = model_named(o["reference"], "--reference") if o["reference"] else None
        judge = model_named(o["reward_model"], "--reward-model")
        snapshot, prompts_project = prompts_arg(o["prompts"])
        owner_project = snapshot.project if snapshot else prompts_project
        try:
            job = evaluation_create(
                policy=policy, reference=reference, reward_model=judge, project=owner_project, snapshot=snapshot,
                prompts_project=prompts_project, split=o["split"], limit=o["limit"],
                sampling=Sampling(temperature=o["temperature"], max_new_tokens=o["max_new_tokens"], seed=o["seed"]),
            )
        except GenerationError as exc:
            raise CommandError(str(exc)) from None
        if not o["here"]:
            self.stdout.write(self.style.SUCCESS(f"evaluation {job.pk} queued on the gpu worker: /training/models/{policy.pk}/"))
            return
        job_run_here(job, self.stdout)
        print_evaluation(self.stdout, job.result)
