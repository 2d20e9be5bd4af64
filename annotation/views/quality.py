"""The quality page: agreement, per-rater table, plots, leaderboard, and pausing raters.

GET  /projects/<slug>/quality/                         researchers and managers (raters 403, outsiders 404);
                                                       a project with questions gets a "Questions" section
GET  /projects/<slug>/quality/plot/<name>.svg          agreement | gold | position, same roles
POST /projects/<slug>/quality/raters/<user_id>/        managers: action=pause|unpause
POST /projects/<slug>/quality/gold/                    managers: threshold, min_answers; re-evaluates raters
"""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_POST

from annotation.quality.ai_agreement import project_ai_agreement
from annotation.quality.gold import gold_settings_set, rater_pause, rater_unpause
from annotation.quality.leaderboard import project_leaderboard
from annotation.models import Membership, Role
from annotation.quality.figures import project_quality, quality_cached, readable_disagreements
from annotation.quality.question_figures import measured_questions, project_question_quality
from annotation.quality.plots import PLOTS, plot_captions, quality_plot
from annotation.selectors import project_get_for_user

@login_required
@require_GET
def quality_page(request: HttpRequest, slug: str) -> HttpResponse:
    project, membership = project_get_for_user(user=request.user, slug=slug, role=Role.RESEARCHER, action="the quality page")
    quality = project_quality(project=project)
    leaderboard = quality_cached(project=project, name="leaderboard", compute=lambda: project_leaderboard(project=project))
    ai = dict(project_ai_agreement(project=project))
    ai["disagreements"] = readable_disagreements(kind=project.kind, rows=ai.get("disagreements", []))
    questions = project_question_quality(project=project) if measured_questions(project) else None
    return render(
        request,
        "annotation/quality.html",
        {
            "project": project,
            "membership": membership,
            "is_manager": membership.has_role(Role.MANAGER),
            "quality": quality,
            "summary": quality["summary"],
            "raters": quality["raters"],
            "leaderboard": leaderboard,
            "plots": list(plot_captions(quality).items()),
            "ai": ai,
            "questions": questions,
        },
    )


@login_required
@require_GET
def quality_plot_svg(request: HttpRequest, slug: str, name: str) -> HttpResponse:
    project, _ = project_get_for_user(user=request.user, slug=slug, role=Role.RESEARCHER, action="the quality page")
    if name not in PLOTS:
        raise Http404("No such plot")
    svg = quality_cached(project=project, name=f"plot-{name}", compute=lambda: quality_plot(name, project_quality(project=project)))
    response = HttpResponse(svg, content_type="image/svg+xml")
    response["Cache-Control"] = "private, max-age=60"
    return response


@login_required
@require_POST
def quality_rater_action(request: HttpRequest, slug: str, user_id: int) -> HttpResponse:
    project, _ = project_get_for_user(user=request.user, slug=slug, role=Role.MANAGER, action="changing raters and gold settings")
    membership = Membership.objects.select_related("user").filter(project=project, user_id=user_id).first()
    if membership is None:
        raise Http404("No such member")
    rater = membership.user
    action = request.POST.get("action")
    if action == "pause":
        rater_pause(project=project, rater=rater, reason=request.POST.get("reason", "").strip())
        messages.success(request, f"{rater.get_username()} is paused: no new items, and their judgments are left out of snapshots.")
    elif action == "unpause":
        rater_unpause(project=project, rater=rater)
        messages.success(request, f"{rater.get_username()} may label again; earlier gold answers no longer count toward a pause.")
    else:
        messages.error(request, "action: must be 'pause' or 'unpause'")
    return redirect(reverse("annotation:quality", kwargs={"slug": project.slug}) + "#raters")


@login_required
@require_POST
def quality_gold_settings(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = project_get_for_user(user=request.user, slug=slug, role=Role.MANAGER, action="changing raters and gold settings")
    raw_threshold = request.POST.get("threshold", "").strip()
    raw_min = request.POST.get("min_answers", "").strip()
    try:
        threshold = float(raw_threshold) if raw_threshold else None
        if threshold is not None and threshold > 1:
            threshold = threshold / 100.0  # "80" means 80 %
        min_answers = int(raw_min) if raw_min else None
        changed = gold_settings_set(project=project, threshold=threshold, min_answers=min_answers)
    except ValueError as exc:
        messages.error(request, f"{exc}" if ":" in str(exc) else f"threshold / min_answers: not a number ({exc})")
    else:
        what = "no threshold (nobody is paused by gold)" if threshold is None else f"threshold {threshold:.0%}"
        messages.success(request, f"Gold settings saved: {what}. Re-evaluated every rater: {changed['paused']} paused, {changed['unpaused']} unpaused.")
    return redirect(reverse("annotation:quality", kwargs={"slug": project.slug}) + "#gold")


urlpatterns = [
    path("projects/<slug:slug>/quality/", quality_page, name="quality"),
    path("projects/<slug:slug>/quality/plot/<str:name>.svg", quality_plot_svg, name="quality-plot"),
    path("projects/<slug:slug>/quality/raters/<id:user_id>/", quality_rater_action, name="quality-rater"),
    path("projects/<slug:slug>/quality/gold/", quality_gold_settings, name="quality-gold"),
]
