"""{% policy_loop model %} on a model's page: its evaluations and generation batches, the human
verdict of each batch with a link to the project's leaderboard, and the forms to start both.
A tag rather than more context in the model view, so that page's view stays the registry's."""
from __future__ import annotations

from django import template
from django.urls import reverse

from annotation.models import DatasetSnapshot
from training.loop.generation import POLICY_KINDS
from training.loop.models import Job
from training.loop.requests import jobs_for_policy
from training.registry.models import ModelArtifact
from training.core.access import projects_managed, projects_viewable
from training.registry.selectors import model_list_for_user

register = template.Library()


@register.inclusion_tag("training/_policy_loop.html", takes_context=True)
def policy_loop(context, model: ModelArtifact):
    user = context["request"].user
    if model.kind not in POLICY_KINDS:
        return {"show": False}
    from training.loop.batches import head_to_head

    jobs = list(jobs_for_policy(user=user, policy=model)[:20])
    for job in jobs:
        job.verdict = None
        if job.kind == Job.Kind.GENERATION and job.status == Job.Status.SUCCEEDED:
            job.leaderboard_url = reverse("annotation:quality", kwargs={"slug": job.project.slug}) + "#leaderboard"
            names = [p["candidate_name"] for p in job.params.get("policies", [])]
            if len(names) >= 2:
                job.verdict = head_to_head(project=job.project, a=names[0], b=names[1])
    viewable = projects_viewable(user=user)
    snapshots = DatasetSnapshot.objects.filter(project__in=viewable, status=DatasetSnapshot.Status.READY).select_related("project").order_by("project__slug", "-version")[:50]
    reference = model.base_model
    reward_models = list(model_list_for_user(user=user).filter(kind=ModelArtifact.Kind.REWARD_MODEL).order_by("name"))
    return {
        "show": True,
        "model": model,
        "jobs": jobs,
        "csrf_token": context.get("csrf_token"),
        "reward_models": reward_models,
        "judge_attributes": judge_attributes(reward_models[:200]),  # a small JSON file each: bounded
        "prompt_choices": [(f"{s.project.slug}:v{s.version}", f"{s.project.name} v{s.version} (snapshot)") for s in snapshots]
        + [(p.slug, f"{p.name} (its items)") for p in viewable.order_by("slug")],
        "managed": projects_managed(user=user).order_by("slug"),
        "default_policies": f"{model.name}@0.7" + (f"\n{reference.name}@1.0" if reference else ""),
        "reference": reference,
    }


def judge_attributes(models: list[ModelArtifact]) -> list[tuple[str, list[str]]]:
    """(name, attributes) of the multi-objective reward models among `models`: the evaluation
    form's help says what its reward_weights may name. A folder that is missing or broken says
    nothing here; queueing the evaluation names the problem."""
    from training.core.heads import heads_read
    from training.registry.services import model_path

    out = []
    for m in models:
        try:
            heads = heads_read(model_path(m))
        except (OSError, ValueError):
            continue
        if heads:
            out.append((m.name, heads["attributes"]))
    return out
