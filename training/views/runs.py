"""Training pages: the runs of a user's projects, the start-run form, a run's live page."""
from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_POST

from annotation.models import Role
from annotation.selectors import project_get_for_user
from annotation.exports.split import split_size_warnings
from training.runs.jobstate import job_state
from training.runs.lifecycle import FINISHED
from training.runs.models import TrainingRun
from training.recipes import catalog
from training.registry.services import model_path
from training.runs.results import display_rows
from training.runs.services import ConfigError, run_cancel, run_create
from django.core.exceptions import PermissionDenied

from training.core.access import projects_managed

from training.registry.selectors import may_see_models

from training.runs.selectors import can_manage_run, run_get_for_user, run_list_for_user, run_results_visible
from training.views.forms import RunForm, config_fields, config_from_post

RESULTS_HIDDEN = "This run's snapshot holds the data of projects you may not read: its results and samples are hidden."


@login_required
def index(request):
    runs = run_list_for_user(user=request.user)[:200]
    context = {"runs": runs, "managed": projects_managed(user=request.user).order_by("name"), "may_see_models": may_see_models(user=request.user)}
    return render(request, "training/index.html", context)


@login_required
def project_runs(request, slug: str):
    project, membership = project_get_for_user(user=request.user, slug=slug, role=Role.RESEARCHER, action="the training runs")
    runs = run_list_for_user(user=request.user, project=project)
    return render(request, "training/project_runs.html", {"project": project, "runs": runs, "is_manager": membership.role == Role.MANAGER})


@login_required
def run_new(request, slug: str):
    project, _ = project_get_for_user(user=request.user, slug=slug, role=Role.MANAGER, action="starting a training run")
    data = request.POST if request.method == "POST" else None
    form = RunForm(data, project=project, user=request.user)
    # ?snapshot=<id> from a snapshot's page; otherwise the newest ready snapshot.
    form.fields["snapshot"].initial = request.GET.get("snapshot") or getattr(form.fields["snapshot"].queryset.first(), "pk", None)
    error = None
    if data is not None and form.is_valid():
        method = form.cleaned_data["method"]
        try:
            run = run_create(
                project=project,
                snapshot=form.cleaned_data["snapshot"],
                base_model=form.cleaned_data["base_model"],
                method=method,
                use_lora=form.cleaned_data["training"] == "lora",
                config=config_from_post(method, data),
                reward_model=form.cleaned_data.get("reward_model"),
                created_by=request.user,
                num_processes=form.cleaned_data["num_processes"] or 1,
                distributed=form.cleaned_data["distributed"] or TrainingRun.Distributed.DDP,
                evaluate_after=form.cleaned_data["evaluate_after"],
            )
        except ConfigError as exc:
            error = str(exc)
        else:
            messages.success(request, f"Run {run.pk} queued: it starts when a gpu worker is free.")
            return redirect("training:run", pk=run.pk)
    snapshot = _chosen_snapshot(form, data)
    sections = [
        {"method": r.method, "label": r.label, "description": r.description, "reads": r.reads, "evaluates": r.evaluates,
         "needs_reward_model": r.needs_reward_model, "fields": config_fields(r.method, data),
         "warnings": split_size_warnings(snapshot.manifest, formats=(r.reads,), nouns={r.reads: r.row_noun}) if snapshot else []}
        for r in form.recipes
    ]
    status = 400 if data is not None else 200
    context = {"project": project, "form": form, "sections": sections, "error": error, "snapshot": snapshot}
    return render(request, "training/run_new.html", context, status=status)


def _chosen_snapshot(form: RunForm, data):
    """The snapshot the form shows (posted, else the initial one): its test-split sizes warn per method."""
    ref = (data or {}).get("snapshot") or form.fields["snapshot"].initial
    try:
        return form.fields["snapshot"].queryset.filter(pk=int(ref)).first() if ref else None
    except (TypeError, ValueError):
        return None


@login_required
def run_detail(request, pk: int):
    run = run_get_for_user(user=request.user, run_id=pk)
    visible = run_results_visible(user=request.user, run=run)
    result = (run.result or {}) if visible else {}
    recipe = _recipe(run.method)
    context = {
        "results_hidden": not visible,
        "run": run,
        "can_cancel": can_manage_run(user=request.user, run=run) and run.status not in FINISHED,
        "finished": run.status in FINISHED,
        "percent": _percent(run),
        "state": job_state(run),
        "evaluation": _evaluation_note(run),
        "test_rows": display_rows(result.get("test") or {}),
        "train_rows": display_rows({k: v for k, v in result.items() if k != "test"}),
        "histogram": margin_histogram(result.get("test") or result),
        "has_samples": visible and run_has_samples(run),
        "output_model": getattr(run, "output_model", None),
        "config_rows": sorted(run.config.items()),
        "metrics_url": reverse("training:run-metrics", args=[run.pk]),
        "recipe": recipe,
        # The recipe's curves and which chart each goes on, for training.js (an attribute: the CSP allows no inline script).
        "chart_groups_json": json.dumps([{"key": m.key, "label": m.label, "group": m.group or m.label} for m in recipe.all_metrics()]
                                        if recipe else []),
    }
    return render(request, "training/run_detail.html", context)


@login_required
@require_GET
def run_metrics(request, pk: int):
    """What the run page polls every few seconds. `since` skips metric points the page has."""
    run = run_get_for_user(user=request.user, run_id=pk)
    return JsonResponse(run_state(run, since=_int(request.GET.get("since"))))


@login_required
@require_POST
def run_cancel_view(request, pk: int):
    run = run_get_for_user(user=request.user, run_id=pk, role=Role.MANAGER, action="cancelling a run")
    run = run_cancel(run=run)
    if run.status == TrainingRun.Status.CANCELLED:
        messages.success(request, f"Run {run.pk} cancelled.")
    elif run.cancel_requested and run.status == TrainingRun.Status.RUNNING:
        messages.success(request, f"Run {run.pk} will stop within a few steps.")
    else:
        messages.info(request, f"Run {run.pk} had already {run.status}; nothing to cancel.")
    return redirect("training:run", pk=run.pk)


@login_required
def run_samples_view(request, pk: int):
    run = run_get_for_user(user=request.user, run_id=pk)
    if not run_results_visible(user=request.user, run=run):
        raise PermissionDenied(RESULTS_HIDDEN)
    return render(request, "training/run_samples.html", {"run": run, "samples": run_samples(run)})


# --- presentation helpers (also used by the API) ----------------------------------------------

def run_state(run: TrainingRun, *, since: int = 0) -> dict:
    points = run.metrics if isinstance(run.metrics, list) else []
    return {
        "id": run.pk,
        "status": run.status,
        "finished": run.status in FINISHED,
        "cancel_requested": run.cancel_requested,
        "step": run.step,
        "total_steps": run.total_steps,
        "percent": _percent(run),
        # "queued, 2nd in line on the gpu queue" / "evaluating · 4 / 4 steps (100%)": what the page shows
        # in place of a bare step counter (training/runs/jobstate.py).
        "state": job_state(run).as_dict(),
        "worker": run.worker,
        "device": run.device,
        "attempts": run.attempts,
        "heartbeat_at": run.heartbeat_at.isoformat() if run.heartbeat_at else None,
        "metrics": points[max(since, 0):],
        "next": len(points),
        "log_tail": run.log_tail,
        "error": run.error,
    }


def _evaluation_note(run: TrainingRun) -> dict | None:
    """The evaluation a policy run queues at its end (training/runs/runner.py): whether it will,
    and once it did, where that job stands. None for runs whose output is not a policy."""
    recipe = _recipe(run.method)
    if recipe is None or recipe.produces != "policy" or recipe.needs_reward_model:
        return None
    job = run.jobs.filter(kind="evaluation").order_by("-created_at").first()
    return {"wanted": run.evaluate_after, "job": job, "state": job_state(job) if job else None}


def margin_histogram(result: dict, bins: int = 20) -> dict | None:
    """The reward-margin distribution as bars: from the recipe's histogram or its raw margins."""
    for key, value in result.items():
        if "margin" not in key:
            continue
        if isinstance(value, dict) and isinstance(value.get("histogram"), dict):  # training.recipes.common.distribution
            bars = margin_histogram({key: value["histogram"]})
            if bars:
                bars["summary"] = [(k, value[k]) for k in ("mean", "std", "p5", "p50", "p95") if isinstance(value.get(k), (int, float))]
                # The caption counts pairs, not bars: a bar may straddle 0 (one pair: a bar around its value).
                if isinstance(value.get("nonpositive"), int):
                    bars["negative"], bars["exact"] = value["nonpositive"], True
                elif isinstance(result.get("accuracy"), (int, float)) and isinstance(value.get("count"), int):
                    bars["negative"], bars["exact"] = value["count"] - round(result["accuracy"] * value["count"]), True
            return bars
        if isinstance(value, dict) and isinstance(value.get("counts"), list) and isinstance(value.get("edges"), list):
            return _bars(value["edges"], value["counts"], key)
        if isinstance(value, list) and value and all(isinstance(v, (int, float)) for v in value):
            lo, hi = min(value), max(value)
            width = (hi - lo) / bins or 1.0
            counts = [0] * bins
            for v in value:
                counts[min(int((v - lo) / width), bins - 1)] += 1
            return _bars([lo + i * width for i in range(bins + 1)], counts, key)
    return None


def _recipe(method: str):
    try:
        return catalog.get(method)
    except KeyError:  # a method whose module is gone: the page still shows the row
        return None


def _bars(edges: list, counts: list, key: str) -> dict:
    top = max(counts) if counts else 0
    bars = [
        {"lo": edges[i], "hi": edges[i + 1] if i + 1 < len(edges) else edges[i], "count": c, "height": round(100 * c / top) if top else 0}
        for i, c in enumerate(counts)
    ]
    negative = sum(b["count"] for b in bars if b["hi"] <= 0)  # a lower bound: bars that straddle 0 are left out
    return {"key": key, "bars": bars, "total": sum(counts), "negative": negative, "exact": False}


def run_samples(run: TrainingRun) -> list[dict]:
    """Samples of a policy run: the trained policy beside its reference on held-out prompts. In the run's
    result, or as samples.jsonl in the output model's folder."""
    samples = (run.result or {}).get("samples")
    if isinstance(samples, list):
        return [_sample(s) for s in samples if isinstance(s, dict)]
    artifact = getattr(run, "output_model", None) if run.pk else None
    if artifact is not None:
        file = model_path(artifact) / "samples.jsonl"
        if file.is_file():
            try:
                return [_sample(json.loads(line)) for line in file.read_text().splitlines() if line.strip()]
            except (OSError, json.JSONDecodeError):
                return []
    return []


def run_has_samples(run: TrainingRun) -> bool:
    """Whether the run page links to the samples page. A stat, not a read: samples.jsonl can be
    large, and the samples page parses it anyway when it is opened."""
    samples = (run.result or {}).get("samples")
    if isinstance(samples, list):
        return any(isinstance(s, dict) for s in samples)
    artifact = getattr(run, "output_model", None) if run.pk else None
    if artifact is None:
        return False
    file = model_path(artifact) / "samples.jsonl"
    try:
        return file.is_file() and file.stat().st_size > 0
    except OSError:  # removed between the two calls
        return False


def _sample(raw: dict) -> dict:
    """One sample under fixed names, whatever the recipe called them."""
    pick = lambda *keys: next((raw[k] for k in keys if raw.get(k) is not None), "")  # noqa: E731
    prompt = pick("prompt")
    if isinstance(prompt, list):  # conversational: show the turns as text
        prompt = "\n".join(f"{m.get('role', '?')}: {m.get('content', '')}" for m in prompt if isinstance(m, dict))
    return {"prompt": prompt, "policy": pick("policy", "trained", "completion", "chosen"), "reference": pick("reference", "ref", "base"),
            "demonstration": pick("demonstration")}


def _percent(run: TrainingRun) -> int:
    if run.status == TrainingRun.Status.SUCCEEDED:
        return 100
    return min(100, round(100 * run.step / run.total_steps)) if run.total_steps else 0


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


urlpatterns = [
    path("", index, name="index"),
    path("projects/<slug:slug>/", project_runs, name="project-runs"),
    path("projects/<slug:slug>/new/", run_new, name="run-new"),
    path("runs/<id:pk>/", run_detail, name="run"),
    path("runs/<id:pk>/metrics.json", run_metrics, name="run-metrics"),
    path("runs/<id:pk>/cancel/", run_cancel_view, name="run-cancel"),
    path("runs/<id:pk>/samples/", run_samples_view, name="run-samples"),
]
