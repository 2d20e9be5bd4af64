"""The labelling page's demonstration editor (static/js/demonstration.js) talks to these.

POST /projects/<slug>/label/<assignment>/demonstration/  {"text", "source_position", "finish"}
POST /projects/<slug>/label/preview/                      {"text"} -> {"html"}: the markdown as the
     page will show it, from the same safe renderer (annotation.rendering), so the preview is
     exactly what a reader sees and no script runs in it
"""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.http import require_POST

from config import jsonlimits

from annotation.demonstrations import MAX_DEMONSTRATION, DemonstrationsOff, demonstration_save
from annotation.kinds import InvalidValue
from annotation.rendering import render_markdown
from annotation.selectors import assignment_get_for_rater, labelling_project_get


def _body(request: HttpRequest) -> dict:
    # The one bounded parser (config.jsonlimits), as on every other route: plain json.loads ran
    # out of stack on deep nesting and let lone surrogates through to the response.
    try:
        body = jsonlimits.loads(request.body or b"{}")
    except jsonlimits.UnsafeJSON as exc:
        raise InvalidValue(exc.field or "body", exc.message) from None
    if not isinstance(body, dict):
        raise InvalidValue("body", "must be a JSON object")
    return body


@login_required
@require_POST
def demonstration_submit(request: HttpRequest, slug: str, assignment_id: int) -> JsonResponse:
    project, _ = labelling_project_get(user=request.user, slug=slug)
    assignment = assignment_get_for_rater(user=request.user, assignment_id=assignment_id, project=project)
    try:
        body = _body(request)
        demo = demonstration_save(
            assignment=assignment, rater=request.user, text=body.get("text", ""), source_position=body.get("source_position"), finish=bool(body.get("finish"))
        )
    except InvalidValue as invalid:
        return JsonResponse({"error": invalid.message, "field": invalid.field}, status=400)
    except DemonstrationsOff as off:
        return JsonResponse({"error": str(off), "field": "demonstrations"}, status=403)
    return JsonResponse({"stored": True, "demonstration": demo.id, "rewrite": demo.is_rewrite, "finished": bool(body.get("finish"))})


@login_required
@require_POST
def markdown_preview(request: HttpRequest, slug: str) -> JsonResponse:
    labelling_project_get(user=request.user, slug=slug)
    try:
        text = _body(request).get("text", "")
    except InvalidValue as invalid:
        return JsonResponse({"error": invalid.message, "field": invalid.field}, status=400)
    if not isinstance(text, str) or len(text) > MAX_DEMONSTRATION:
        return JsonResponse({"error": f"must be text of at most {MAX_DEMONSTRATION} characters", "field": "text"}, status=400)
    return JsonResponse({"html": str(render_markdown(text))})


urlpatterns = [
    path("projects/<slug:slug>/label/preview/", markdown_preview, name="label-preview"),
    path("projects/<slug:slug>/label/<id:assignment_id>/demonstration/", demonstration_submit, name="label-demonstration"),
]
