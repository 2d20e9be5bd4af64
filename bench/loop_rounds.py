"""Rounds of the real loop, through the product's own services, and whether raters prefer what it makes.

    .venv/bin/python bench/loop_rounds.py                      # 3 rounds, GRPO, 100 held-out HH prompts
    .venv/bin/python bench/loop_rounds.py --method ppo --rounds 2
    .venv/bin/python bench/loop_rounds.py --quick              # a few prompts and steps: does it run?

Each round, on a throwaway SQLite database in a temporary ARBITER_DATA_DIR, with Celery eager (every
queued job runs here, as a worker would run it):

 1. a generation batch: the current policy answers each training prompt twice (T=1), imported as
    binary items into the training project (round 1 starts from SmolLM2-135M-Instruct);
 2. simulated raters lease each item and submit through the rater API a person's browser uses;
 3. a snapshot of every label so far, and a reward model (MiniLM, full fine-tuning) trained on it;
 4. online RL of the current policy against that reward model (GRPO by default, full fine-tuning,
    so the new policy can start the next round; no KL term by default, as in TRL: --rl-beta);
 5. generation batches on the held-out prompts, never used for training: the new policy against
    the base, and against the previous round's policy, each into a project of its own; each batch
    names the round's reward model, so the job also records its verdict on the very same pairs
    (win rate, and the mean KL of the new policy to the other) with no second generation; answers
    a policy already made there (the base, the previous policy, the new one in its second batch)
    are read back, not generated again (training/loop/answers.py);
 6. simulated raters judge those batches; the raters' win rate is read from the projects'
    leaderboards, beside the reward model's on the same answers.

The prompts are real: the first user turn of each conversation in Anthropic's HH-RLHF
harmless-base test file (../shared/data/hh-rlhf), shuffled with a fixed seed; the first --heldout go
to the held-out set, the next --train-prompts to training.

The raters' rule, stated in each judgment's rationale: **prefer the answer that speaks to the
person, not about itself** -- the larger share of second-person words (you, your, yourself, you're...)
less the share of first-person singular ones (I, me, my, I'm...); an answer of fewer than four words
counts worst, and when the rule cannot tell two answers apart (equal scores: most often neither
says "you" or "I") the rater answers "tie", as a person would, and the pair teaches nothing. Why this rule:
 - it is not length: shares of the words, so padding an answer does not raise it (the classic confounder);
 - a reward model can learn it only from labels (nothing tells it the rule), and the policy never
   sees it, so a win for the policy is the loop working: labels -> reward model -> RL -> answers;
 - SmolLM2-135M's answers vary both ways ("I'm sorry, I can't..." against "You can..."), so RL has
   variance to move, and few pairs tie;
 - it is a real preference of rating guides ("address the user's situation, not yourself").
It can be gamed: with no KL anchor, by round 3 the policy answered "You are you are you're you
are..." in all 100 held-out answers, which the plain rule scores best. --rule no-repeats adds what a
person does on sight: an answer with fewer than half its words distinct counts worst (none of
SmolLM2's own 700 answers in that run did).
--noise flips each rater's preference with that probability (default 0.2: real raters disagree).
Ties matter: in a first version the raters broke them with a coin, so about half the labels were
noise, the reward model learned what the coin said, and RL against it raised the reward model's win
rate over the base to 0.73 while the raters' stayed at 0.53 (over-optimisation of a bad reward
model; docs/loop-rounds.md). A tie counts half a win on the leaderboard, as a coin would on average.

Writes bench/results/loop_rounds.json: {"settings": ..., "rounds": [...]}, one object per round.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["ARBITER_DATA_DIR"] = tempfile.mkdtemp(prefix="arbiter-loop-rounds-")
os.environ.pop("DATABASE_URL", None)  # the embedded default: this bench needs no server
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ[key] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

HH = ROOT.parent / "shared" / "data" / "hh-rlhf" / "harmless-base-test.jsonl.gz"
RESULTS = ROOT / "bench" / "results" / "loop_rounds.json"
RULES = {
    "plain": "simulated rater: prefers the answer that speaks to the person, not about itself "
             "(share of you-words less share of I-words)",
    "no-repeats": "simulated rater: prefers the answer that speaks to the person, not about itself "
                  "(share of you-words less share of I-words); an answer that repeats itself "
                  "(fewer than half its words distinct) counts worst",
}
_WORDS = re.compile(r"[A-Za-z']+")
_SECOND_PERSON = {"you", "your", "yours", "yourself", "yourselves", "you're", "you've", "you'll", "you'd"}
_FIRST_PERSON = {"i", "me", "my", "mine", "myself", "i'm", "i've", "i'll", "i'd"}


def rater_score(text: str, rule: str = "plain") -> float:
    """The rule the simulated raters follow (see the module docstring)."""
    words = [w.lower() for w in _WORDS.findall(text)]
    if len(words) < 4:
        return -1.0
    # "You are you are you are..." scores the plain rule's best; a person rejects it on sight.
    # None of SmolLM2's own 700 answers in the reported run fell under one half (docs/loop-rounds.md).
    if rule == "no-repeats" and len(set(words)) / len(words) < 0.5:
        return -1.0
    return (sum(w in _SECOND_PERSON for w in words) - sum(w in _FIRST_PERSON for w in words)) / len(words)


def hh_prompts(path: Path) -> list[str]:
    """The first user turn of each conversation, once each, in file order."""
    out, seen = [], set()
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            chosen = json.loads(line)["chosen"]
            first = chosen.split("\n\nHuman:", 1)[-1].split("\n\nAssistant:", 1)[0].strip()
            if first and first not in seen and len(first) <= 400:
                seen.add(first)
                out.append(first)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train-prompts", type=int, default=300, help="Training prompts; each round labels a pair on each.")
    parser.add_argument("--heldout", type=int, default=100, help="Held-out prompts the raters judge the policies on.")
    parser.add_argument("--noise", type=float, default=0.2, help="Probability that a rater's answer is flipped.")
    parser.add_argument("--method", default="grpo", choices=("grpo", "ppo"))
    parser.add_argument("--rl-steps", type=int, default=24, help="Optimizer steps of each round's RL run.")
    parser.add_argument("--rl-lr", type=float, default=5e-5, help="Learning rate of the RL runs (full fine-tuning).")
    parser.add_argument("--rl-beta", type=float, default=0.0,
                        help="GRPO's KL weight in the loss: 0 (TRL's default) keeps no reference model, a quarter less "
                             "compute per update; the KL to the base is measured on the held-out answers each round.")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--long-run", type=int, default=0, metavar="STEPS",
                        help="After the rounds, one longer RL run from the base against the last reward model, its "
                             "checkpoints sent to the raters: the over-optimisation chart (0: skip).")
    parser.add_argument("--checkpoints", type=int, default=5, help="Checkpoints the long run keeps and sends to raters.")
    parser.add_argument("--rule", default="plain", choices=sorted(RULES),
                        help="The raters' rule: plain, or no-repeats (a self-repeating answer counts worst).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="A few prompts and steps, to see that it runs.")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    if args.quick:
        args.train_prompts, args.heldout, args.rl_steps, args.rounds = 16, 8, 2, min(args.rounds, 2)
        args.long_run, args.checkpoints = min(args.long_run, 4), 2
    if not HH.exists():
        print(f"!! {HH} is missing: this bench reads the HH-RLHF prompts from ../shared/data", file=sys.stderr)
        return 2

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from config.celery import app

    app.conf.task_always_eager = True  # each queued job runs here, as the worker would run it
    loop = Loop(args)
    rounds = []
    for r in range(1, args.rounds + 1):
        rounds.append(loop.round(r))
        _write(args, rounds)
        _print_table(rounds)
    _plot_rounds(rounds, Path(args.out).with_suffix(".png"))
    if args.long_run:
        long_run = loop.long_run()
        _write(args, rounds, long_run)
        print(json.dumps(long_run, indent=2))
    return 0


class Loop:
    def __init__(self, args):
        from django.contrib.auth import get_user_model
        from django.test import Client

        from annotation.projects import project_create
        from training.registry.services import model_register_minilm, model_register_smollm2

        self.args = args
        self.rng = random.Random(args.seed)
        users = get_user_model().objects
        self.manager = users.create_user("loop-manager", password="x", is_staff=True)
        self.raters = [users.create_user(f"loop-rater{i}", password="x") for i in (1, 2, 3)]
        self.clients = []
        for rater in self.raters:
            client = Client()
            client.force_login(rater)
            self.clients.append(client)
        prompts = hh_prompts(HH)
        random.Random(args.seed).shuffle(prompts)
        heldout, train = prompts[: args.heldout], prompts[args.heldout : args.heldout + args.train_prompts]
        self.train_prompts = self._prompt_set("loop-train-prompts", train)
        self.heldout_prompts = self._prompt_set("loop-heldout-prompts", heldout)
        members = {u: "rater" for u in self.raters}
        self.labels = project_create(name="Loop labels", slug="loop-labels", created_by=self.manager, members=members,
                                     allow_tie=True, instructions=RULES[self.args.rule])
        t0 = time.monotonic()
        self.base = model_register_smollm2()
        self.encoder = model_register_minilm()
        print(f"models registered in {time.monotonic() - t0:.0f}s: {self.base.name}, {self.encoder.name}")
        self.policies = [self.base]
        self.members = members
        self.labelled_total = 0

    def _prompt_set(self, slug: str, prompts: list[str]):
        import io

        from annotation.importers import import_stream
        from annotation.projects import project_create

        project = project_create(name=slug, slug=slug, created_by=self.manager, prompt_set=True)
        data = "".join(json.dumps({"id": f"{slug}-{i:04d}", "prompt": p}) + "\n" for i, p in enumerate(prompts))
        import_stream(project=project, stream=io.BytesIO(data.encode()), filename=f"{slug}.jsonl")
        return project

    # --- one round ---------------------------------------------------------------------------

    def round(self, r: int) -> dict:
        from training.loop.generation import Sampling

        started = time.monotonic()
        current = self.policies[-1]
        a = self.args
        print(f"\n== round {r}: labels on {current.name}'s answers")
        self._batch(self.labels, [(current, 2, Sampling(temperature=1.0, max_new_tokens=a.max_new_tokens))],
                    self.train_prompts, a.train_prompts)
        labelled = self._rate(self.labels)
        self.labelled_total += labelled
        snapshot = self._snapshot()
        rm_run, judge = self._reward_model(snapshot)
        test = rm_run.result.get("test", {})
        rl_run, policy = self._policy_run(r, snapshot, current, judge)
        self.last_snapshot, self.last_judge = snapshot, judge
        self.policies.append(policy)
        row = {"round": r, "labels": labelled, "labels_total": self.labelled_total,
               "rm_accuracy": test.get("accuracy"), "rm_accuracy_n": test.get("accuracy_n", 0),
               "rl_method": a.method, "rl_updates": rl_run.result.get("global_step"),
               "rl_seconds": round((rl_run.finished_at - rl_run.started_at).total_seconds(), 1)}
        row.update(_wilson_pair("rm_accuracy", test.get("accuracy"), test.get("accuracy_n", 0)))
        sampling = Sampling(temperature=0.7, max_new_tokens=a.max_new_tokens)
        for label, other in (("base", self.base), ("previous", current)):
            if label == "previous" and other.pk == self.base.pk:
                row.update({k.replace("_vs_base", "_vs_previous"): v for k, v in row.items() if k.endswith("_vs_base")})
                continue
            project = self._eval_project(f"loop-r{r}-vs-{label}")
            job = self._batch(project, [(policy, 1, sampling), (other, 1, sampling)], self.heldout_prompts, a.heldout,
                              reward_model=judge)
            self._rate(project)
            row.update(self._rater_win_rate(project, policy, other, label))
            rm = job.result["reward_model"]  # the reward model's verdict on the same pairs the raters judged
            row.update({f"rm_win_rate_vs_{label}": _round(rm["win_rate"]), f"rm_n_vs_{label}": rm["n"],
                        f"kl_mean_vs_{label}": _round(rm["kl_mean"])})
        row["round_seconds"] = round(time.monotonic() - started, 1)
        return row

    def _batch(self, project, policies, prompts_project, limit, reward_model=None):
        from training.loop.batches import batch_summary, generation_batch_create
        from training.loop.cli import job_run_here

        t0 = time.monotonic()
        job = generation_batch_create(project=project, policies=policies, prompts_project=prompts_project, limit=limit,
                                      created_by=self.manager, reward_model=reward_model)
        job_run_here(job, sys.stdout)
        print(f"  {batch_summary(job.result, project.slug)} [{time.monotonic() - t0:.0f}s]")
        return job

    def _rate(self, project, ranking: bool = False) -> int:
        """Every rater takes leases and submits through the rater API until nothing is left."""
        stored = 0
        for client in self.clients:
            while True:
                lease = client.post(f"/api/projects/{project.slug}/next/")
                if lease.status_code == 204:
                    break
                assert lease.status_code == 200, lease.content
                body = lease.json()
                submit = client.post(f"/api/assignments/{body['assignment']}/submit/",
                                     {"value": self._rank(body["candidates"]) if ranking else {"winner": self._choose(body["candidates"])},
                                      "rationale": RULES[self.args.rule], "duration_ms": 1},
                                     content_type="application/json")
                assert submit.status_code in (200, 201), submit.content
                stored += 1
        print(f"  {stored} judgments by the simulated raters on {project.slug}")
        return stored

    def _choose(self, candidates: list[dict]) -> int | str:
        """The position the rule prefers, "tie" when it cannot tell them apart; --noise flips a preference."""
        scores = [(rater_score(c["text"], self.args.rule), c["position"]) for c in candidates]
        (low, worst), (high, best) = min(scores), max(scores)
        if low == high:
            return "tie"
        return worst if self.rng.random() < self.args.noise else best

    def _rank(self, candidates: list[dict]) -> dict:
        """Best first by the rule; with probability --noise two neighbours swap places."""
        order = [c["position"] for c in sorted(candidates, key=lambda c: (rater_score(c["text"], self.args.rule), self.rng.random()), reverse=True)]
        if self.rng.random() < self.args.noise:
            i = self.rng.randrange(len(order) - 1)
            order[i], order[i + 1] = order[i + 1], order[i]
        return {"ranking": [[p] for p in order]}

    def _snapshot(self):
        from annotation.exports import snapshot_create

        snapshot = snapshot_create(project=self.labels, options={"test_share": 0.2, "seed": self.args.seed}, created_by=self.manager)
        snapshot.refresh_from_db()
        assert snapshot.status == snapshot.Status.READY, snapshot.error
        return snapshot

    def _reward_model(self, snapshot):
        from training.registry.models import ModelArtifact
        from training.runs.services import run_create

        t0 = time.monotonic()
        run = run_create(project=self.labels, snapshot=snapshot, base_model=self.encoder, method="reward", use_lora=False,
                         config={"num_train_epochs": 3, "learning_rate": 5e-5, "per_device_train_batch_size": 8,
                                 "max_length": 256, "logging_steps": 5, "save_steps": 10_000},
                         created_by=self.manager)
        run.refresh_from_db()
        assert run.status == run.Status.SUCCEEDED, run.error
        test = run.result.get("test", {})
        print(f"  reward model on {snapshot}: held-out accuracy {test.get('accuracy')} on {test.get('accuracy_n')} pairs "
              f"[{time.monotonic() - t0:.0f}s]")
        return run, ModelArtifact.objects.get(run=run)

    def _policy_run(self, r, snapshot, current, judge, *, steps=None, extra=None):
        from training.registry.models import ModelArtifact
        from training.runs.services import run_create

        a = self.args
        config = {"max_steps": steps or a.rl_steps, "per_device_train_batch_size": 16, "logging_steps": 1,
                  "save_steps": max(a.rl_steps, 1), "eval_prompts": 0, "sample_prompts": 0, "learning_rate": a.rl_lr}
        if a.method == "grpo":
            config.update({"max_completion_length": a.max_new_tokens, "num_generations": 4, "beta": a.rl_beta})
        else:
            config.update({"max_new_tokens": a.max_new_tokens, "critic_init": "policy"})
        config.update(extra or {})
        run = run_create(project=self.labels, snapshot=snapshot, base_model=current, method=a.method, use_lora=False,
                         config=config, reward_model=judge, created_by=self.manager)
        run.refresh_from_db()
        assert run.status == run.Status.SUCCEEDED, run.error
        print(f"  {a.method} run {run.pk}: {run.result.get('global_step')} updates in "
              f"{(run.finished_at - run.started_at).total_seconds():.0f}s")
        return run, ModelArtifact.objects.get(run=run)

    def _eval_project(self, slug):
        from annotation.projects import project_create

        return project_create(name=slug, slug=slug, created_by=self.manager, members=self.members, allow_tie=True,
                              instructions=RULES[self.args.rule])

    def _rater_win_rate(self, project, policy, other, label) -> dict:
        from annotation.quality.leaderboard import project_leaderboard
        from training.core.stats import win_figures

        rows = {row["model"]: row for row in project_leaderboard(project=project)}
        mine = next((row for name, row in rows.items() if name.startswith(policy.name)), None)
        if mine is None:
            return {f"rater_win_rate_vs_{label}": None, f"n_vs_{label}": 0}
        figures = win_figures(wins=mine["wins"], ties=mine["ties"], n=mine["games"])
        return {f"rater_win_rate_vs_{label}": round(figures["win_rate"], 3), f"rater_ci_low_vs_{label}": round(figures["ci_low"], 3),
                f"rater_ci_high_vs_{label}": round(figures["ci_high"], 3), f"n_vs_{label}": figures["n"]}

    # --- one long run, its checkpoints judged by the raters --------------------------------------

    def long_run(self) -> dict:
        """A longer RL run of the base against the last round's reward model, keeping checkpoints;
        they go to the raters with the base as reference (training.runs.checkpoints, the run page's
        "send checkpoints to raters"), ranked on the held-out prompts; the run page's chart is saved."""
        from annotation.projects import project_create
        from training.runs.checkpoints import checkpoint_chart, checkpoint_figures, checkpoints_to_raters
        from training.loop.cli import job_run_here
        from annotation.models import Project

        a = self.args
        print(f"\n== long run: {a.long_run} {a.method} steps from {self.base.name}, {a.checkpoints} checkpoints to raters")
        every = max(1, a.long_run // a.checkpoints)
        run, _ = self._policy_run("long", self.last_snapshot, self.base, self.last_judge, steps=a.long_run,
                                  extra={"save_steps": every, "keep_checkpoints": a.checkpoints})
        k = len(run.result.get("checkpoints", [])) + 1
        project = project_create(name="loop-checkpoints", slug="loop-checkpoints", created_by=self.manager, members=self.members,
                                 kind="ranking", ranking_min_k=k, ranking_k=k, instructions=RULES[self.args.rule])
        t0 = time.monotonic()
        job = checkpoints_to_raters(run=run, steps=None, project=project, prompts_project=self.heldout_prompts,
                                    limit=a.heldout, user=self.manager)
        job_run_here(job, sys.stdout)
        print(f"  checkpoint batch: {job.result.get('items_created')} items [{time.monotonic() - t0:.0f}s]")
        self._rate(project, ranking=True)
        figures = checkpoint_figures(run=run, projects_readable=Project.objects.all())
        out = Path(self.args.out)  # loop_rounds.json -> loop_checkpoints.svg, loop_rounds_x.json -> loop_checkpoints_x.svg
        stem = out.stem.replace("loop_rounds", "loop_checkpoints", 1)
        chart = out.with_name((stem if stem != out.stem else stem + "_checkpoints") + ".svg")
        chart.write_text(checkpoint_chart(figures))
        rows = [{"step": c["step"], "rm_score": _round(c["score"]), "kl": _round(c["kl"]),
                 **({"rater_win_rate": _round(c["rater"]["win_rate"]), "rater_ci_low": _round(c["rater"]["ci_low"]),
                     "rater_ci_high": _round(c["rater"]["ci_high"]), "n": c["rater"]["n"]} if c["rater"] else {})}
                for c in figures["checkpoints"]]
        return {"steps": run.result.get("global_step"), "seconds": round((run.finished_at - run.started_at).total_seconds(), 1),
                "checkpoints": rows, "raters_prefer_step": figures["preferred"], "chart": str(chart.relative_to(ROOT) if chart.is_relative_to(ROOT) else chart)}


def _round(value, digits=3):
    return round(value, digits) if isinstance(value, (int, float)) else value


def _wilson_pair(name, rate, n) -> dict:
    from training.core.stats import wilson

    if not n or rate is None:
        return {}
    lo, hi = wilson(rate * n, n)
    return {f"{name}_ci_low": round(lo, 3), f"{name}_ci_high": round(hi, 3)}


def _write(args, rounds, long_run=None):
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    settings = {k: v for k, v in vars(args).items() if k != "out"}
    body = {"settings": settings, "rule": RULES[args.rule], "rounds": rounds}
    if long_run:
        body["long_run"] = long_run
    out.write_text(json.dumps(body, indent=2) + "\n")


def _plot_rounds(rounds, path: Path):
    """The raters' win rate of each round's policy over the base and over the previous one, with
    95% intervals, beside the reward model's win rate over the base."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.4))
    ax = fig.add_subplot()
    xs = [r["round"] for r in rounds]
    for key, label, shift in (("vs_base", "raters: new policy over the base", -0.06), ("vs_previous", "raters: over the previous round", 0.06)):
        # Round 1's previous policy is the base: its "over the previous" point would repeat the other.
        shown = [r for r in rounds if key == "vs_base" or r["round"] > 1]
        ys = [r.get(f"rater_win_rate_{key}") for r in shown]
        lo = [r.get(f"rater_ci_low_{key}") for r in shown]
        hi = [r.get(f"rater_ci_high_{key}") for r in shown]
        if not shown or None in ys or None in lo:
            continue
        ax.errorbar([r["round"] + shift for r in shown], ys, yerr=[[y - low for y, low in zip(ys, lo)], [h - y for y, h in zip(ys, hi)]],
                    marker="o", capsize=4, label=label)
    rm = [r.get("rm_win_rate_vs_base") for r in rounds]
    if None not in rm:
        ax.plot(xs, rm, "s--", color="grey", label="reward model: over the base")
    ax.axhline(0.5, color="black", linewidth=0.8)
    ax.set_xticks(xs)
    ax.set_xlim(0.5, len(xs) + 0.5)
    ax.set_xlabel("round")
    ax.set_ylabel("win rate (95% interval)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="lower right")
    n = rounds[-1].get("n_vs_base")
    ax.set_title(f"Simulated raters on {n} held-out HH-RLHF prompts", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot: {path}")


def _print_table(rounds):
    def rate(row, key, low=None, high=None):
        v = row.get(key)
        if v is None:
            return "-"
        text = f"{v:.3f}" if isinstance(v, float) else str(v)
        if low and row.get(low) is not None:
            text += f" [{row[low]:.2f}, {row[high]:.2f}]"
        return text

    print("\nround | labels | RM held-out acc [95%] (n) | RL updates, s | raters vs base [95%] (n) "
          "| raters vs previous [95%] (n) | RM vs base | KL vs base | round s")
    for row in rounds:
        print(" | ".join([
            str(row["round"]), str(row["labels_total"]),
            f"{rate(row, 'rm_accuracy', 'rm_accuracy_ci_low', 'rm_accuracy_ci_high')} ({row.get('rm_accuracy_n')})",
            f"{row.get('rl_updates')}, {row.get('rl_seconds')}",
            f"{rate(row, 'rater_win_rate_vs_base', 'rater_ci_low_vs_base', 'rater_ci_high_vs_base')} ({row.get('n_vs_base')})",
            f"{rate(row, 'rater_win_rate_vs_previous', 'rater_ci_low_vs_previous', 'rater_ci_high_vs_previous')} "
            f"({row.get('n_vs_previous')})",
            rate(row, "rm_win_rate_vs_base"), rate(row, "kl_mean_vs_base"), str(row.get("round_seconds")),
        ]))

if __name__ == "__main__":
    sys.exit(main())
