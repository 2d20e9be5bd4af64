"""Evaluation and generation-batch requests from a person (the policy's page and the API):
parse the fields, check permissions, call the service. One function per request, shared by the
view and the API so both answer the same way.

Permissions: an evaluation needs the manager role on the project whose prompts it reads (it
spends that project's GPU time); a generation batch needs the manager role on the target project
(it adds items there) and the researcher role on the project its prompts come from. Every model
named must be visible to the user (training.registry.selectors.model_get_for_user)."""
from __future__ import annotations

import math

from annotation.models import Role
from annotation.selectors import project_get_for_user
from training.loop.generation import GenerationError, Sampling
from training.loop.models import Job
from training.registry.models import ModelArtifact
from training.loop.prompt_sources import prompts_parse
from training.core.access import row_get_for_user
from training.registry.selectors import model_get_for_user


def _fields(data) -> dict:
    """The request's fields: a JSON body that is a list or a string has none to read."""
    if not isinstance(data, dict):
        raise GenerationError(f"non_field_errors: the body must be a JSON object, not {type(data).__name__}")
    return data


def _number(data, key: str, default, kind=float):
    raw = data.get(key, default)
    if raw in (None, ""):
        return default
    what = "whole number" if kind is int else "number"
    # true is not the number 1; "nan" and "inf" are floats to Python but not numbers the worker can use.
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise GenerationError(f"{key}: {str(raw)[:40]!r} is not a {what}")
    try:
        number = float(raw)
        if not math.isfinite(number):
            raise ValueError
        if kind is int:
            if isinstance(raw, str):
                return int(raw.strip())
            if not number.is_integer():
                raise ValueError
            return int(raw)
        return number
    except (TypeError, ValueError, OverflowError):
        raise GenerationError(f"{key}: {str(raw)[:40]!r} is not a {what}") from None


def _model(user, value, field: str) -> ModelArtifact:
    if isinstance(value, ModelArtifact):
        return value
    value = str(value or "").strip()
    if not value:
        raise GenerationError(f"{field}: is required")
    # An id past 64 bits cannot be a row (and SQLite refuses to compare with it): look it up as a name.
    by_id = value.isdigit() and len(value) <= 18
    found = ModelArtifact.objects.filter(**({"pk": int(value)} if by_id else {"name": value})).first()
    if found is None:
        raise GenerationError(f"{field}: no registered model {value!r}")
    return model_get_for_user(user=user, model_id=found.pk)


def _sampling(data, defaults=None) -> Sampling:
    d = {**(defaults or {}), **{k: v for k, v in data.items() if v not in (None, "")}}
    return Sampling(
        temperature=_number(d, "temperature", 0.7), top_p=_number(d, "top_p", 1.0),
        max_new_tokens=_number(d, "max_new_tokens", 64, int), seed=_number(d, "seed", 0, int),
    )


def evaluation_request(*, user, policy: ModelArtifact, data) -> Job:
    from training.loop.evaluation import evaluation_create

    data = _fields(data)
    snapshot, prompts_project = prompts_parse(data.get("prompts"), user=user)
    owner = snapshot.project if snapshot else prompts_project
    project_get_for_user(user=user, slug=owner.slug, role=Role.MANAGER)
    reference = _model(user, data.get("reference"), "reference") if data.get("reference") else None
    return evaluation_create(
        policy=policy, reference=reference, reward_model=_model(user, data.get("reward_model"), "reward_model"),
        project=owner, snapshot=snapshot, prompts_project=prompts_project, split=str(data.get("split") or "test"),
        limit=_number(data, "limit", 64, int), sampling=_sampling(data), created_by=user, reward_weights=data.get("reward_weights"),
    )


def policies_parse(value, *, user, defaults: dict) -> list[tuple[ModelArtifact, int, Sampling]]:
    """A list of {"model", "k", "temperature", ...} (API) or lines "NAME@TEMPERATURE xK" (form)."""
    if isinstance(value, str):
        rows = []
        for n, line in enumerate(value.splitlines(), start=1):
            line = line.strip()
            if not line:
                continue
            name, _, rest = line.partition("@")
            temperature, _, k = rest.replace(" ", "").partition("x")
            rows.append({"model": name.strip(), "temperature": temperature or None, "k": k or 1, "line": n})
    elif isinstance(value, list):
        rows = value
    else:
        raise GenerationError("policies: give a list of {model, k, temperature} or lines NAME@TEMPERATURE xK")
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise GenerationError(f"policies[{i}]: must be an object with model, k, temperature")
        where = f"policies line {row['line']}" if "line" in row else f"policies[{i}]"
        try:
            model = _model(user, row.get("model"), "model")
            k = _number(row, "k", 1, int)
            sampling = _sampling({k2: v for k2, v in row.items() if k2 in ("temperature", "top_p", "max_new_tokens", "seed")}, defaults)
        except GenerationError as exc:
            raise GenerationError(f"{where}.{exc}") from None
        out.append((model, k, sampling))
    return out


def generation_request(*, user, policy: ModelArtifact, data) -> Job:
    from training.loop.batches import generation_batch_create

    data = _fields(data)
    slug = str(data.get("project") or "").strip()
    if not slug:
        raise GenerationError("project: is required (the project the items go to)")
    target, _ = project_get_for_user(user=user, slug=slug, role=Role.MANAGER)
    snapshot, prompts_project = prompts_parse(data.get("prompts"), user=user)
    defaults = {k: data.get(k) for k in ("top_p", "max_new_tokens", "seed") if data.get(k) not in (None, "")}
    policies = policies_parse(data.get("policies") or f"{policy.name}@0.7", user=user, defaults=defaults)
    # The job lives on the page it was started from.
    policies.sort(key=lambda p: p[0].pk != policy.pk)
    judge = _model(user, data["reward_model"], "reward_model") if data.get("reward_model") not in (None, "") else None
    return generation_batch_create(project=target, policies=policies, snapshot=snapshot, prompts_project=prompts_project,
                                   split=str(data.get("split") or "test"), limit=_number(data, "limit", 100, int), created_by=user,
                                   reward_model=judge, reward_weights=data.get("reward_weights") if judge else None)


def job_get_for_user(*, user, job_id: int, role: str = Role.RESEARCHER) -> Job:
    """The job, if the user holds `role` on its project: Http404 for outsiders, 403 for too low a role."""
    jobs = Job.objects.select_related("policy", "import_batch")
    return row_get_for_user(jobs, user=user, pk=job_id, role=role, what="job")


def job_results_visible(*, user, job: Job) -> bool:
    """Whether the user may read a job's result: an evaluation's samples quote its prompts and the
    answers to them, and its win rate is a statistic of them. So the prompts' source decides, by
    the rule that guards it elsewhere: a snapshot by annotation's one snapshot read rule (a
    snapshot of A that holds B: readers of both), a project's items by reading that project. The
    job's own project is not enough: the job may have been started by someone who reads more."""
    from annotation.models import DatasetSnapshot
    from training.core.access import projects_readable, snapshot_readable

    source = (job.params or {}).get("prompts") or {}
    if "snapshot" in source:
        snapshot = DatasetSnapshot.objects.filter(pk=source["snapshot"]).first()
        return snapshot is not None and snapshot_readable(user=user, snapshot=snapshot)
    if "project" in source:
        return projects_readable(user=user).filter(pk=source["project"]).exists()
    return True


def job_shown_to(*, user, job: Job) -> Job:
    """The job as this user may see it: its result emptied (in memory only, never saved) where
    job_results_visible says no. Every page and API answer that shows a job goes through it."""
    if job.result and not job_results_visible(user=user, job=job):
        job.result = {}
    return job


def jobs_for_policy(*, user, policy: ModelArtifact):
    from training.core.access import projects_viewable

    return Job.objects.filter(policy=policy, project__in=projects_viewable(user=user)).select_related("project").order_by("-created_at")
