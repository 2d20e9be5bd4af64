"""The rater's labelling page and the three small endpoints it talks to.

GET  /projects/<slug>/label/                       the page, holding the rater's current lease
GET  /projects/<slug>/label/next/                  JSON: the current or next lease, as HTML to swap in
POST /projects/<slug>/label/<assignment>/submit/   store the answer; JSON carries the next item
POST /projects/<slug>/label/<assignment>/skip/     pass on the item; JSON carries the next item
GET  /projects/<slug>/label/<assignment>/text/<part>/  one whole text, plain ("show all" on a long one)

The page works with label.js (JSON posts, no reloads) and without it (plain form posts that
redirect back to the page). Leasing, submitting and progress are the services' work
(annotation.assignment, annotation.judgments, annotation.progress); these views parse input,
check who may label, and turn the services' answers into HTML or JSON.

Who may label: raters and managers of the project (and staff). Researchers read statistics but
do not label (403); outsiders learn nothing (404).
"""
from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from annotation import kinds
from annotation.assignment import RaterPaused, assignment_skip, lease_next
from annotation.judgments import LeaseLost, judgment_submit
from annotation.labelling import item_context, item_text, value_from_form
from annotation.models import Assignment, Membership, Project
from annotation.my_work import skipped_count
from annotation.questions import answers_from_form
from annotation.progress import rater_progress
from annotation.selectors import assignment_get_for_rater, labelling_project_get
from annotation.submission import Submission, parse_submission
from config import jsonlimits


def _stage(request: HttpRequest, project: Project, membership: Membership | None) -> dict:
    """What the rater sees now: an item under lease, or why there is none."""
    if project.archived:
        return {"state": "closed"}
    try:
        # The membership we already hold spares lease_next a query of its own (None: it reads it).
        assignment = lease_next(project=project, rater=request.user, membership=membership)
    except RaterPaused as paused:
        return {"state": "paused", "reason": str(paused)}
    if assignment is None:
        return {"state": "done"}
    return {"state": "item", **item_context(project=project, assignment=assignment)}


def _progress(request: HttpRequest, project: Project, stage: dict) -> dict:
    """The rater's progress as the page shows it beside `stage`. The count of what is left is
    an estimate from counters (annotation.progress); the lease is the truth, so the two never
    contradict each other on screen: "All done" shows 0 left (slots other raters hold are
    named on the card instead), an item on screen at least 1."""
    progress = rater_progress(project=project, rater=request.user)
    if stage["state"] == "item":
        progress["remaining"] = max(1, progress["remaining"])
    elif stage["state"] == "done":
        stage["held_by_others"] = progress["remaining"]
        progress["remaining"] = 0
    return progress


def _stage_payload(request: HttpRequest, project: Project, membership: Membership | None) -> dict:
    stage = _stage(request, project, membership)
    progress = _progress(request, project, stage)
    html = render_to_string("annotation/_label_stage.html", {"project": project, **stage}, request=request)
    payload = {"state": stage["state"], "html": html, "progress": progress}
    if stage["state"] == "item":
        payload["assignment"] = stage["assignment"].id
        payload["display_order"] = stage["assignment"].display_order
        # The html draws the questions; the declaration beside it is for clients that read JSON.
        payload["questions"] = project.questions or []
    return payload


def _wants_json(request: HttpRequest) -> bool:
    return request.content_type == "application/json" or "application/json" in request.headers.get("Accept", "")


def _error(request: HttpRequest, project: Project, status: int, message: str, field: str = "", **extra) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"error": message, "field": field, **extra}, status=status)
    messages.error(request, f"{field}: {message}" if field else message)
    return redirect("annotation:label", slug=project.slug)


def _parse_submission(request: HttpRequest, project: Project, assignment: Assignment) -> Submission:
    """The submitted answer and its extras, from a JSON body (label.js) or a plain form post;
    the limits are annotation.submission's, the same as the API's."""
    if request.content_type == "application/json":
        try:
            body = jsonlimits.loads(request.body or b"{}")
        except jsonlimits.UnsafeJSON as exc:
            raise kinds.InvalidValue(exc.field or "body", exc.message) from None
        return parse_submission(body)
    return parse_submission(
        {
            "value": value_from_form(project, request.POST, len(assignment.display_order)),
            # label.js sends the answers as one JSON field; the page without JavaScript, field by field.
            "answers": request.POST.get("answers") or answers_from_form(project, request.POST, len(assignment.display_order)),
            "duration_ms": request.POST.get("duration_ms"),
            "rationale": request.POST.get("rationale", ""),
            "flags": request.POST.getlist("flags"),
            "client_key": request.POST.get("client_key", ""),
        }
    )


def _posted_answers(request: HttpRequest, project: Project, n_candidates: int) -> dict:
    """The answers as posted, to draw them again on a refused page (nothing typed is lost)."""
    raw = request.POST.get("answers")
    if raw:
        try:
            parsed = json.loads(raw)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    try:
        return answers_from_form(project, request.POST, n_candidates)
    except kinds.InvalidValue:
        return {}


def _refused_page(request: HttpRequest, project: Project, assignment: Assignment, invalid: kinds.InvalidValue) -> HttpResponse:
    """A plain form post (no JavaScript) that was refused: the same item again, status 400, the
    error naming the field, and the answers the rater gave still set."""
    messages.error(request, f"{invalid.field}: {invalid.message}" if invalid.field else invalid.message)
    answers = _posted_answers(request, project, len(assignment.display_order))
    stage = {"state": "item", **item_context(project=project, assignment=assignment, answers=answers)}
    context = {"project": project, "progress": _progress(request, project, stage), "skipped": skipped_count(project=project, rater=request.user), **stage}
    return render(request, "annotation/label.html", context, status=400)


@login_required
@require_GET
def label_page(request: HttpRequest, slug: str) -> HttpResponse:
    project, membership = labelling_project_get(user=request.user, slug=slug)
    stage = _stage(request, project, membership)
    context = {"project": project, "progress": _progress(request, project, stage), "skipped": skipped_count(project=project, rater=request.user), **stage}
    return render(request, "annotation/label.html", context)


@login_required
@require_GET
def label_next(request: HttpRequest, slug: str) -> HttpResponse:
    project, membership = labelling_project_get(user=request.user, slug=slug)
    return JsonResponse(_stage_payload(request, project, membership))


@login_required
@require_POST
def label_submit(request: HttpRequest, slug: str, assignment_id: int) -> HttpResponse:
    project, _ = labelling_project_get(user=request.user, slug=slug)
    assignment = assignment_get_for_rater(user=request.user, assignment_id=assignment_id, project=project)
    try:
        submission = _parse_submission(request, project, assignment)
        judgment, created = judgment_submit(assignment=assignment, rater=request.user, **submission.as_kwargs())
    except kinds.InvalidValue as invalid:
        if not _wants_json(request):
            return _refused_page(request, project, assignment, invalid)
        return _error(request, project, 400, invalid.message, invalid.field)
    except LeaseLost as lost:
        # The answer cannot count any more; hand the rater their next item straight away.
        extra = {"next": _stage_payload(request, project, None)} if _wants_json(request) else {}
        return _error(request, project, 409, str(lost), **extra)
    if not _wants_json(request):
        return redirect("annotation:label", slug=project.slug)
    # None: a gold answer may just have paused the rater, so lease_next reads the membership afresh.
    return JsonResponse({"stored": True, "created": created, "judgment": judgment.id, "next": _stage_payload(request, project, None)})


@login_required
@require_POST
def label_skip(request: HttpRequest, slug: str, assignment_id: int) -> HttpResponse:
    project, membership = labelling_project_get(user=request.user, slug=slug)
    assignment = assignment_get_for_rater(user=request.user, assignment_id=assignment_id, project=project)
    skipped = assignment_skip(assignment=assignment, rater=request.user)
    if not _wants_json(request):
        return redirect("annotation:label", slug=project.slug)
    # skipped_count: the page's "N skipped" note shows the new count without a reload.
    return JsonResponse({"skipped": skipped, "skipped_count": skipped_count(project=project, rater=request.user),
                         "next": _stage_payload(request, project, membership)})


@login_required
@require_GET
def label_text(request: HttpRequest, slug: str, assignment_id: int, part: str) -> HttpResponse:
    """The whole of one text of the rater's own item, as plain text: what "show all" loads when
    the page rendered only the start of it (annotation.rendering.render_head)."""
    project, _ = labelling_project_get(user=request.user, slug=slug)
    assignment = assignment_get_for_rater(user=request.user, assignment_id=assignment_id, project=project)
    text = item_text(assignment=assignment, part=part)
    if text is None:
        raise Http404("No such text")
    # text/plain and nosniff (config.middleware): a browser never runs it as HTML.
    response = HttpResponse(text, content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "private, max-age=300"
    return response


urlpatterns = [
    path("projects/<slug:slug>/label/", label_page, name="label"),
    path("projects/<slug:slug>/label/next/", label_next, name="label-next"),
    path("projects/<slug:slug>/label/<id:assignment_id>/submit/", label_submit, name="label-submit"),
    path("projects/<slug:slug>/label/<id:assignment_id>/skip/", label_skip, name="label-skip"),
    path("projects/<slug:slug>/label/<id:assignment_id>/text/<slug:part>/", label_text, name="label-text"),
]
