"""An online run's kept checkpoints as policies: register one as a model, send several to raters
in one generation batch, and read back, per checkpoint, the reward model's score, the KL to the
reference and the raters' win rate over the reference (the run page's over-optimisation chart).

The run lists its checkpoints in run.result["checkpoints"] (training/runs/results.py, written when it
finishes; the recipes keep the newest `keep_checkpoints`). A registered checkpoint is a copy of the
files a model needs (not the optimizer state), so it outlives the run's work folder and loads like any
trained policy: an adapter on the run's base model when the run trained LoRA.

Why a ranking project: the batch puts every checkpoint's answer and the reference's answer to one
prompt in one item (K = checkpoints + 1), so one rater action ranks them all, every checkpoint meets
the reference on the same prompts, and each "checkpoint vs reference" game comes out of the ranking
(annotation.quality.leaderboard.project_games). Binary pairs would need K-1 items per prompt and
K-1 times the raters' time for the same games. A project that cannot take that many answers per item
is refused, naming the K it needs."""
from __future__ import annotations

import shutil
from pathlib import Path

from django.db import transaction

from annotation.kinds import Kind
from annotation.models import Project
from training.core.paths import artifact_path, artifact_relative
from training.loop.batches import generation_batch_create, head_to_head
from training.loop.generation import GenerationError, Sampling
from training.loop.models import Job
from training.registry.models import ModelArtifact
from training.runs.models import TrainingRun

# Trainer state a checkpoint holds to resume, which a model does not need.
STATE_FILES = ("optimizer.pt", "scheduler.pt", "trainer_state.json", "training_args.bin", "state.pt", "scaler.pt")


class CheckpointError(GenerationError):
    """A request about checkpoints that cannot be done; the message names the field."""


def checkpoint_list(run: TrainingRun) -> list[dict]:
    return [c for c in (run.result or {}).get("checkpoints") or [] if isinstance(c, dict) and isinstance(c.get("step"), int)]


def checkpoint_get(run: TrainingRun, step: int) -> dict:
    for record in checkpoint_list(run):
        if record["step"] == step:
            return record
    kept = ", ".join(str(c["step"]) for c in checkpoint_list(run)) or "none"
    raise CheckpointError(f"step: run {run.pk} kept no checkpoint at step {step} (kept: {kept})")


def checkpoint_model_name(run: TrainingRun, step: int) -> str:
    output = ModelArtifact.objects.filter(run=run).first()
    stem = output.name if output else f"{run.base_model.name}-{run.method}-run{run.pk}"
    suffix = f"@step-{step}"
    return stem[: 200 - len(suffix)] + suffix


def checkpoint_register(*, run: TrainingRun, step: int, user=None) -> ModelArtifact:
    """The checkpoint at `step` as a registered policy, "<run's model name>@step-N"; registering it
    again returns the same model. Its files are copied out of the run's work folder (the trainer
    would delete the checkpoint as newer ones come), leaving the optimizer state behind."""
    record = checkpoint_get(run, step)
    name = checkpoint_model_name(run, step)
    existing = ModelArtifact.objects.filter(name=name).first()
    if existing is not None:
        if (existing.config or {}).get("run") != run.pk:
            raise CheckpointError(f"step: the name {name} is taken by another model")
        return existing
    source = artifact_path(record["path"])
    if not source.is_dir():
        raise CheckpointError(f"step: the files of checkpoint {step} are gone from {record['path']}")
    final = Path(artifact_path("models")) / f"run-{run.pk}-step-{step}"
    staging = final.with_name(final.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for f in source.iterdir():
        if f.is_file() and f.name not in STATE_FILES and not f.name.startswith("rng_state"):
            shutil.copy2(f, staging / f.name)
    with transaction.atomic():
        model, created = ModelArtifact.objects.get_or_create(name=name, defaults=dict(
            kind=ModelArtifact.Kind.POLICY, source=ModelArtifact.Source.TRAINED, path=artifact_relative(final),
            is_adapter=run.use_lora, base_model=run.base_model, snapshot=run.snapshot,
            config={"method": run.method, "use_lora": run.use_lora, "run": run.pk, "checkpoint_step": step},
            metrics={k: record[k] for k in ("score", "kl") if record.get(k) is not None},
        ))
        if created:
            shutil.rmtree(final, ignore_errors=True)
            staging.rename(final)
    shutil.rmtree(staging, ignore_errors=True)  # another request registered it first
    return model


def checkpoints_to_raters(*, run: TrainingRun, steps: list[int] | None, project: Project, snapshot=None,
                          prompts_project: Project | None = None, split: str = "test", limit: int = 100,
                          user=None) -> Job:
    """Register the chosen checkpoints (all kept ones when `steps` is empty) and queue ONE generation
    batch into `project`: one answer per prompt from each checkpoint and from the run's base model,
    the reference. Prompts: the run snapshot's `split` unless a snapshot or project is given."""
    kept = checkpoint_list(run)
    if not kept:
        raise CheckpointError("checkpoints: this run kept no checkpoints (only finished online runs keep them)")
    steps = sorted(set(steps or [c["step"] for c in kept]))
    for step in steps:
        checkpoint_get(run, step)
    need = len(steps) + 1
    low, high = project.candidates_range
    if project.kind != Kind.RANKING or not low <= need <= (high or need):
        takes = f"takes {low if low == high else f'{low} to {high}'} answers per item" if project.kind == Kind.RANKING else f"is a {project.kind} project"
        raise CheckpointError(
            f"project: {project.name} {takes}; {len(steps)} checkpoint(s) and the reference make {need} answers per item: "
            f"choose a ranking project whose K range holds {need}, or fewer checkpoints")
    if snapshot is None and prompts_project is None:
        snapshot = run.snapshot
    temperature = float((run.config or {}).get("temperature") or 0.7)
    max_new = int((run.config or {}).get("max_completion_length") or (run.config or {}).get("max_new_tokens") or 64)
    sampling = Sampling(temperature=temperature, max_new_tokens=max_new)
    models = [checkpoint_register(run=run, step=step, user=user) for step in steps]
    policies = [(m, 1, sampling) for m in models] + [(run.base_model, 1, sampling)]
    # The run's reward model also judges the answers: each checkpoint's KL to the reference on them,
    # which the chart needs when training logged none (GRPO's default beta 0 computes no KL).
    judge = run.reward_model if run.reward_model and run.reward_model.kind == ModelArtifact.Kind.REWARD_MODEL else None
    return generation_batch_create(project=project, policies=policies, snapshot=snapshot, prompts_project=prompts_project,
                                   split=split, limit=limit, run=run, created_by=user, reward_model=judge)


# --- reads: what the run page charts -------------------------------------------------------------

def checkpoint_figures(*, run: TrainingRun, projects_readable) -> dict:
    """{"checkpoints": [{step, score, kl, model, rater}], "preferred": step | None, "batch": Job | None}.
    `score` and `kl` are the training log's at that step; where it logged no KL, the KL measured on
    the batch's answers (the batch's reward-model verdict). `rater` is the raters' verdict of the checkpoint over the reference in the newest finished batch
    of this run whose project the reader may read (`projects_readable`, a queryset): win rate with
    n and a 95% Wilson interval, a tie counting half. The preferred checkpoint is the one with the
    highest lower bound (a high rate on few games is not yet a preference)."""
    kept = checkpoint_list(run)
    names = {checkpoint_model_name(run, c["step"]): c["step"] for c in kept}
    models = {m.name: m for m in ModelArtifact.objects.filter(name__in=names)}
    batch = (Job.objects.filter(run=run, kind=Job.Kind.GENERATION, status=Job.Status.SUCCEEDED, project__in=projects_readable)
             .select_related("project").order_by("-created_at").first())
    verdicts, measured = {}, {}
    if batch is not None:
        specs = batch.params.get("policies", [])
        judged = (batch.result or {}).get("reward_model_by_policy") or {}
        reference = next((s["candidate_name"] for s in specs if s["model"] == run.base_model_id), None)
        for spec in specs:
            step = names.get(spec["model_name"])
            if step is not None and reference is not None:
                verdicts[step] = head_to_head(project=batch.project, a=spec["candidate_name"], b=reference)
                measured[step] = (judged.get(spec["candidate_name"]) or {}).get("kl_mean")
    rows = []
    for c in kept:
        name = checkpoint_model_name(run, c["step"])
        rater = verdicts.get(c["step"])
        kl = c.get("kl") if c.get("kl") is not None else measured.get(c["step"])
        rows.append({"step": c["step"], "score": c.get("score"), "kl": kl, "model": models.get(name),
                     "rater": rater if rater and rater.get("n") else None})
    rated = [r for r in rows if r["rater"]]
    preferred = max(rated, key=lambda r: (r["rater"]["ci_low"], r["rater"]["win_rate"]))["step"] if rated else None
    return {"checkpoints": rows, "preferred": preferred, "batch": batch}


def checkpoint_chart(figures: dict) -> str:
    """The chart as inline SVG (matplotlib, text as paths, as annotation/quality/plots.py draws):
    above, the reward model's score and the KL per checkpoint step; below, the raters' win rate over
    the reference with its interval, the preferred checkpoint marked."""
    from matplotlib.figure import Figure

    from annotation.quality.plots import ACCENT, BAD, MUTED, WIDTH, _svg

    rows = figures["checkpoints"]
    steps = [r["step"] for r in rows]
    fig = Figure(figsize=(WIDTH, 4.6), dpi=100)
    top, bottom = fig.subplots(2, 1, sharex=True)
    for ax in (top, bottom):
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    scored = [(r["step"], r["score"]) for r in rows if r["score"] is not None]
    if scored:
        top.plot(*zip(*scored), marker="o", color=ACCENT, label="reward-model score")
    top.set_ylabel("RM score", color=ACCENT)
    kls = [(r["step"], r["kl"]) for r in rows if r["kl"] is not None]
    if kls:
        twin = top.twinx()
        twin.spines["top"].set_visible(False)
        twin.plot(*zip(*kls), marker="s", color=MUTED, linestyle="--", label="KL to reference")
        twin.set_ylabel("KL", color=MUTED)
    rated = [r for r in rows if r["rater"]]
    bottom.axhline(0.5, color=MUTED, linewidth=0.8, linestyle=":")
    if rated:
        x = [r["step"] for r in rated]
        y = [r["rater"]["win_rate"] for r in rated]
        err = [[v - r["rater"]["ci_low"] for v, r in zip(y, rated)], [r["rater"]["ci_high"] - v for v, r in zip(y, rated)]]
        bottom.errorbar(x, y, yerr=err, fmt="o", color=BAD, capsize=3)
        best = next((r for r in rated if r["step"] == figures["preferred"]), None)
        if best is not None:
            bottom.plot([best["step"]], [best["rater"]["win_rate"]], marker="*", markersize=16, color=BAD)
    else:
        bottom.text(0.5, 0.5, "Not rated yet", ha="center", va="center", color=MUTED, transform=bottom.transAxes)
    bottom.set_ylim(0, 1)
    bottom.set_ylabel("raters' win rate")
    bottom.set_xlabel("checkpoint step")
    if steps:
        bottom.set_xticks(steps)
    svg = _svg(fig).decode()
    return svg[svg.index("<svg"):]  # inline: without the XML declaration and doctype


# --- a person's request (the run page's form) ----------------------------------------------------

def checkpoints_request(*, user, run: TrainingRun, data) -> Job:
    """The "send checkpoints to raters" form: steps (none: all kept), project (the target, where the
    user must be a manager), prompts (SLUG:vN or SLUG; empty: the run's snapshot, which the user must
    be allowed to read), split, limit. The run itself was fetched for a manager of its project."""
    from annotation.exports.selectors import snapshot_check_readable
    from annotation.models import Role
    from annotation.selectors import project_get_for_user
    from training.loop.prompt_sources import prompts_parse

    getlist = data.getlist if hasattr(data, "getlist") else (lambda key: data.get(key) or [])
    steps = []
    for raw in getlist("steps"):
        if not str(raw).strip().isdigit() or len(str(raw).strip()) > 9:
            raise CheckpointError(f"steps: {str(raw)[:40]!r} is not a checkpoint step")
        steps.append(int(str(raw).strip()))
    slug = str(data.get("project") or "").strip()
    if not slug:
        raise CheckpointError("project: is required (the project the items go to)")
    target, _ = project_get_for_user(user=user, slug=slug, role=Role.MANAGER, action="sending answers to its raters")
    snapshot = prompts_project = None
    if str(data.get("prompts") or "").strip():
        snapshot, prompts_project = prompts_parse(data.get("prompts"), user=user)
    else:
        snapshot_check_readable(user=user, snapshot=run.snapshot)
    split = str(data.get("split") or "test")
    if split not in ("train", "test"):
        raise CheckpointError(f"split: {split[:20]!r} must be train or test")
    raw_limit = str(data.get("limit") or "100").strip()
    if not raw_limit.isdigit() or len(raw_limit) > 9:
        raise CheckpointError(f"limit: {raw_limit[:40]!r} is not a whole number")
    return checkpoints_to_raters(run=run, steps=steps, project=target, snapshot=snapshot, prompts_project=prompts_project,
                                 split=split, limit=int(raw_limit), user=user)
