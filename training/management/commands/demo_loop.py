"""The whole loop on the CPU, on the demo data, printing each step's figures:

    python manage.py demo_loop                 # SmolLM2-135M-Instruct policy, MiniLM reward model
    python manage.py demo_loop --skip-rl       # no policy run: evaluate and generate with the base policy

1. demo data (seed_demo) and simulated raters label it (demo_train --simulate-raters: the rule
   is stated in every judgment), a snapshot is built and a reward model trained on it;
2. a short online RL run (GRPO by default, or PPO) of the policy, with LoRA, against that reward
   model, answers as long as --max-new-tokens;
3. evaluation of the new policy against its base on held-out prompts (RM win rate, KL, lengths):
   the snapshot's test split, or --eval-prompts (e.g. a project imported from the HH-RLHF sample,
   whose prompts no step trained on). The win rate and the reward model's accuracy are printed
   with n and their Wilson interval, and a line says when the interval is too wide to conclude
   (the demo's own test split holds a handful of prompts, so it is, unless --eval-prompts);
4. a generation batch: one answer from each of the new policy and its base for each of the demo
   project's prompts (up to --prompts), imported into a fresh binary project for raters; once
   they have judged, its leaderboard compares the two by model name.

Every step runs in this process (Celery tasks eager), so no worker needs to be running.
"""
from __future__ import annotations

import time

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from annotation.models import Project
from training.registry.models import ModelArtifact
from training.runs.models import TrainingRun

ONLINE_METHODS = ("grpo", "ppo")


class Command(BaseCommand):
    help = "Run the feedback loop end to end on the CPU with the demo data and print each step's figures."

    def add_arguments(self, parser):
        parser.add_argument("--policy", default="", help="A registered causal LM (default: SmolLM2-135M-Instruct, registered if needed).")
        parser.add_argument("--reward-base", default="", help="Base model of the reward model (default: MiniLM, registered if needed).")
        parser.add_argument("--method", default="grpo", choices=ONLINE_METHODS, help="Online RL method of step 2.")
        parser.add_argument("--rl-steps", type=int, default=6, help="Optimizer steps of the policy run.")
        parser.add_argument("--skip-rl", action="store_true", help="Skip the policy run (step 2).")
        parser.add_argument("--prompts", type=int, default=8, help="Prompts of the generation batch.")
        parser.add_argument("--eval-prompts", default="",
                            help="Held-out prompts of the evaluation: SLUG:vN or SLUG:latest (a snapshot's test split) or SLUG (a project's "
                                 "items, e.g. one imported from HH-RLHF). Default: the reward model's snapshot's test split.")
        parser.add_argument("--eval-limit", type=int, default=200, help="At most this many evaluation prompts (about 100 give a ±0.1 interval).")
        parser.add_argument("--max-new-tokens", type=int, default=32)
        parser.add_argument("--target", default="", help="Slug of the project the new candidates go to (default: demo-loop-N, created).")

    def handle(self, *args, **o):
        from config.celery import app

        eager = app.conf.task_always_eager
        app.conf.task_always_eager = True  # every queued task runs here, now
        self.started = time.monotonic()
        try:
            self._loop(o)
        finally:
            app.conf.task_always_eager = eager

    def _step(self, title: str):
        self.t0 = time.monotonic()
        self.stdout.write(self.style.MIGRATE_HEADING(f"\n== {title}"))

    def _lines(self, lines: list[str]):
        for line in lines:
            self.stdout.write(line)

    def _done(self, line: str):
        self.stdout.write(f"{line}  [{time.monotonic() - self.t0:.1f}s, total {time.monotonic() - self.started:.1f}s]")

    def _loop(self, o):
        from training.loop.cli import interval_lines, model_named, prompts_arg

        self._step("1. demo data, simulated raters, reward model")
        demo = Project.objects.filter(slug="demo-binary").first()
        if demo is None:
            call_command("seed_demo", verbosity=0, stdout=self.stdout)
            demo = Project.objects.get(slug="demo-binary")
        if o["policy"]:
            policy = model_named(o["policy"], "--policy")
        else:
            from training.registry.services import model_register_smollm2

            policy = model_register_smollm2()
        before = list(TrainingRun.objects.filter(project=demo, method="reward").values_list("pk", flat=True))
        train_args = ["--simulate-raters"] + (["--base-model", o["reward_base"]] if o["reward_base"] else [])
        call_command("demo_train", *train_args, stdout=self.stdout)
        rm_run = TrainingRun.objects.filter(project=demo, method="reward").exclude(pk__in=before).order_by("-pk").first()
        rm_run.refresh_from_db()
        if rm_run.status != TrainingRun.Status.SUCCEEDED:
            raise CommandError(f"reward-model run {rm_run.pk} {rm_run.status}: {rm_run.error}")
        judge = ModelArtifact.objects.get(run=rm_run)
        snapshot = rm_run.snapshot
        test = rm_run.result.get("test", {})
        figures = ", ".join(f"{k} {v:.3f}" for k, v in test.items() if isinstance(v, float))
        self._done(f"reward model {judge.name} on {snapshot}: {figures or test}")
        if isinstance(test.get("accuracy"), float) and test.get("accuracy_n"):
            self._lines(interval_lines(what="reward-model accuracy", rate=test["accuracy"], n=test["accuracy_n"],
                                       successes=round(test["accuracy"] * test["accuracy_n"])))

        new_policy = policy
        if o["skip_rl"]:
            self._step("2. policy run: skipped (--skip-rl)")
            self._done("the generation batch compares the base policy at two temperatures instead")
        else:
            self._step(f"2. policy run ({o['method']})")
            new_policy = self._policy_run(o, demo=demo, snapshot=snapshot, policy=policy, judge=judge) or policy

        from training.loop.batches import batch_summary, generation_batch_create
        from training.loop.evaluation import evaluation_create
        from training.loop.generation import Sampling
        from training.loop.cli import job_run_here

        sampling = Sampling(temperature=0.7, max_new_tokens=o["max_new_tokens"])
        if new_policy.pk != policy.pk:
            self._step(f"3. evaluation of {new_policy.name} against {policy.name}, judged by {judge.name}")
            eval_snapshot, eval_project = prompts_arg(o["eval_prompts"]) if o["eval_prompts"] else (snapshot, None)
            job = evaluation_create(policy=new_policy, reference=policy, reward_model=judge, project=demo, snapshot=eval_snapshot,
                                    prompts_project=eval_project, limit=o["eval_limit"], sampling=sampling)
            job_run_here(job, self.stdout)
            from training.management.commands.evaluate_policy import print_evaluation

            result = job.result
            print_evaluation(self.stdout, result)
            self._lines(interval_lines(what="RM win rate", rate=result["win_rate"], n=result["n"], ci=(result["ci_low"], result["ci_high"])))
            if result["n"] < o["eval_limit"] and not o["eval_prompts"]:
                self.stdout.write(f"only {result['n']} held-out prompts in {snapshot}'s test split; --eval-prompts SLUG evaluates on "
                                  "a project's prompts instead (e.g. one imported from the HH-RLHF sample)")
            self._done(f"evaluation {job.pk} on {result['n']} held-out prompts")
        else:
            self._step("3. evaluation: skipped (no new policy to compare with its base)")
            self._done("")

        self._step("4. generation batch for raters")
        target = self._target(o, demo)
        if new_policy.pk != policy.pk:
            policies = [(new_policy, 1, sampling), (policy, 1, sampling)]
        else:
            policies = [(policy, 1, Sampling(temperature=0.3, max_new_tokens=o["max_new_tokens"])), (policy, 1, sampling)]
        # The demo snapshot's test split holds a handful of prompts; the project's own prompts give raters a real batch.
        job = generation_batch_create(project=target, policies=policies, prompts_project=demo, limit=o["prompts"], created_by=demo.created_by)
        job_run_here(job, self.stdout)
        self._done(f"{batch_summary(job.result, target.slug)}: /projects/{target.slug}/ — once rated, "
                   f"its leaderboard /projects/{target.slug}/quality/#leaderboard")
        self.stdout.write(self.style.SUCCESS(f"\nloop done in {time.monotonic() - self.started:.1f}s"))

    def _policy_run(self, o, *, demo, snapshot, policy, judge) -> ModelArtifact | None:
        """A short LoRA run of the online method against the new reward model; on refusal or failure
        the loop goes on with the base policy and says why."""
        from training.runs.services import ConfigError, run_create

        config = {"max_steps": o["rl_steps"], "per_device_train_batch_size": 4, "logging_steps": 1,
                  "save_steps": max(o["rl_steps"], 1), "sample_prompts": 0}
        # Long answers cost the most on a CPU; the demo keeps them as short as the batch it sends to raters.
        config["max_completion_length" if o["method"] == "grpo" else "max_new_tokens"] = o["max_new_tokens"]
        if o["method"] == "ppo":
            # The critic gives per-token values, so it needs the policy's tokenizer: the demo's reward
            # model is an encoder (MiniLM) with its own, so the critic starts from the policy.
            config["critic_init"] = "policy"
        try:
            run = run_create(project=demo, snapshot=snapshot, base_model=policy, method=o["method"], use_lora=True,
                             config=config, reward_model=judge, created_by=demo.created_by)
        except (ConfigError, ValueError) as exc:
            self._done(f"the {o['method']} run was refused: {exc}; continuing with the base policy")
            return None
        run.refresh_from_db()
        if run.status != TrainingRun.Status.SUCCEEDED:
            self._done(f"{o['method']} run {run.pk} {run.status}: {run.error}; continuing with the base policy")
            return None
        last = (run.metrics or [{}])[-1]
        figures = " ".join(f"{k}={v:.4g}" for k, v in last.items() if isinstance(v, float) and k != "epoch")
        seconds = (run.finished_at - run.started_at).total_seconds()
        self._done(f"{o['method']} run {run.pk}: {run.result.get('global_step')} updates in {seconds:.0f}s; last {figures}")
        return ModelArtifact.objects.get(run=run)

    def _target(self, o, demo: Project) -> Project:
        from annotation.projects import membership_set, project_create

        if o["target"]:
            found = Project.objects.filter(slug=o["target"]).first()
            if found is None:
                raise CommandError(f"--target: no project {o['target']!r}")
            return found
        n = Project.objects.filter(slug__startswith="demo-loop-").count() + 1
        while Project.objects.filter(slug=f"demo-loop-{n}").exists():
            n += 1
        target = project_create(name=f"Demo loop round {n}", slug=f"demo-loop-{n}", created_by=demo.created_by, kind=demo.kind)
        for m in demo.memberships.select_related("user"):
            membership_set(project=target, user=m.user, role=m.role)
        return target
