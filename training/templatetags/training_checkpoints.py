"""{% checkpoint_panel run as panel %} for templates/training/_checkpoints.html: an online run's kept
checkpoints, their over-optimisation chart and the "send checkpoints to raters" form. A tag rather
than more context in the run view, so that the run page's view stays as it is (policy_loop does the
same on a model's page)."""
from __future__ import annotations

from django import template

from annotation.kinds import Kind
from training.core.access import projects_managed, projects_viewable
from training.runs.checkpoints import checkpoint_chart, checkpoint_figures, checkpoint_list
from training.runs.selectors import can_manage_run, run_results_visible

register = template.Library()


@register.simple_tag(takes_context=True)
def checkpoint_panel(context, run) -> dict:
    user = context["request"].user
    if not checkpoint_list(run) or not run_results_visible(user=user, run=run):
        return {"show": False}
    figures = checkpoint_figures(run=run, projects_readable=projects_viewable(user=user))
    manager = can_manage_run(user=user, run=run) or user.is_staff
    return {
        "show": True,
        **figures,
        "chart": checkpoint_chart(figures),
        "can_send": manager,
        "targets": projects_managed(user=user).filter(kind=Kind.RANKING).order_by("slug") if manager else [],
        "k": len(figures["checkpoints"]) + 1,
    }
