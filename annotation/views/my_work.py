"""My work: a rater's own judgments on a project, newest first, and changing one within the
project's edit window (annotation.my_work does the work).

GET       /projects/<slug>/my-work/                 the history, ?answer=<filter>&page=<n>
GET/POST  /projects/<slug>/my-work/<judgment>/      one judgment, and its change (a new version)
"""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_http_methods

from annotation import kinds, my_work, submission
from annotation.answer_form import answer_controls, cards_for, describe_answers
from annotation.labelling import chat_messages, question_context, value_from_form
from annotation.questions import answers_from_form
from annotation.models import Judgment, Role
from annotation.selectors import labelling_project_get

PAGE_SIZE = 50


MAX_PAGE = 1_000_000


@login_required
@require_http_methods(["GET"])
def my_work_page(request: HttpRequest, slug: str) -> HttpResponse:
    project, membership = labelling_project_get(user=request.user, slug=slug)
    answer = request.GET.get("answer", "")
    if answer not in my_work.ANSWER_FILTERS:
        answer = ""
    try:
        # Capped: an offset past 64 bits is an OverflowError in the database driver (a 500).
        page = min(max(1, int(request.GET.get("page", "1"))), MAX_PAGE)
    except ValueError:
        page = 1
    rows = list(my_work.my_judgments(project=project, rater=request.user, answer=answer)[(page - 1) * PAGE_SIZE : page * PAGE_SIZE + 1])
    more = len(rows) > PAGE_SIZE
    shown = my_work.candidate_snippets(judgments=rows[:PAGE_SIZE])
    entries = [
        {
            "judgment": j,
            "name": _item_name(membership, j.item),
            "item_id": _item_id(membership, j.item),
            "candidates": shown.get(j.id, []),
            "answer": my_work.describe_answer(j.kind, j.value, j.display_order),
            "editable": my_work.can_edit(project=project, judgment=j),
            "deadline": my_work.edit_deadline(project=project, judgment=j),
        }
        for j in rows[:PAGE_SIZE]
    ]
    filters = dict(my_work.ANSWER_FILTERS)
    if project.kind not in (kinds.Kind.BINARY, kinds.Kind.LIKERT):
        filters = {"changed": filters["changed"]}
    elif project.kind == kinds.Kind.LIKERT or not project.allow_both_bad:
        filters.pop("both_bad")
    context = {
        "project": project,
        "entries": entries,
        "answer": answer,
        "filters": filters,
        "page": page,
        "more": more,
        "skipped": my_work.skipped_count(project=project, rater=request.user),
    }
    return render(request, "annotation/my_work.html", context)


def _item_name(membership, item) -> str:
    """What names an item on these pages: the start of its prompt, for every role. A rater must
    not be able to tell a gold item (a demo's gold-001) from the others, and a manager looking
    at their own answers recognises an item by what it asks, not by an importer's id."""
    return my_work.prompt_snippet(item.prompt)


def _item_id(membership, item) -> str:
    """The importer's id, beside the snippet, for researchers and managers only (they may know
    which items are gold; a rater may not)."""
    return item.external_id if membership.has_role(Role.RESEARCHER) else ""


def _own_judgment(request: HttpRequest, project, judgment_id: int) -> Judgment:
    judgment = Judgment.objects.filter(id=judgment_id, project=project, rater=request.user, source=Judgment.Source.HUMAN).select_related("item", "project").first()
    if judgment is None:
        raise Http404("No such judgment")
    return judgment


@login_required
@require_http_methods(["GET", "POST"])
def my_judgment_page(request: HttpRequest, slug: str, judgment_id: int) -> HttpResponse:
    project, membership = labelling_project_get(user=request.user, slug=slug)
    judgment = _own_judgment(request, project, judgment_id)
    cards = cards_for(judgment.item, judgment.display_order)
    value = judgment.value
    answers = judgment.answers or {}
    rationale = judgment.rationale
    status = 200
    if request.method == "POST":
        # Shown again as sent when it is refused: nothing the rater typed is lost.
        rationale = request.POST.get("rationale", "")
        try:
            value = value_from_form(project, request.POST, len(cards))
            # The form shows every question, so what it posts is the whole new set of answers
            # (None for a project that asks none: the stored {} stays as it is).
            answers = answers_from_form(project, request.POST, len(cards)) if project.questions else None
            change = my_work.judgment_change(judgment=judgment, rater=request.user, value=value, answers=answers, rationale=rationale)
        except kinds.InvalidValue as invalid:
            messages.error(request, f"{invalid.field}: {invalid.message}")
            status = 400
        except my_work.EditWindowClosed as closed:
            messages.error(request, str(closed))
            status = 403
        else:
            messages.success(request, f"Changed: now version {change.judgment.version}." if change.changed else "Nothing changed.")
            return redirect("annotation:my-work", slug=project.slug)
    item = judgment.item
    order = [c["position"] for c in cards]
    # Copies: _item_cards.html draws `cards`; the question form draws these, preset to the answers.
    question_cards = [dict(c) for c in cards]
    questions_shown = question_context(project=project, cards=question_cards, answers=answers)
    context = {
        "project": project,
        "judgment": judgment,
        "item": item,
        "name": _item_name(membership, item),
        "item_id": _item_id(membership, item),
        "rationale": rationale,
        "max_text": submission.MAX_RATIONALE,
        "chat": chat_messages(item.prompt) if item.is_chat else [],
        "cards": cards,
        "answer": my_work.describe_answer(judgment.kind, judgment.value, judgment.display_order),
        "editable": my_work.can_edit(project=project, judgment=judgment),
        "deadline": my_work.edit_deadline(project=project, judgment=judgment),
        "controls": answer_controls(project, cards, value),
        "answers": describe_answers(project, judgment.answers, order),
        "question_cards": [c for c in question_cards if c.get("questions")],
        **questions_shown,
        "revisions": [
            {"version": r.version, "given_at": r.given_at, "answer": my_work.describe_answer(judgment.kind, r.value, judgment.display_order), "rationale": r.rationale,
             "answers": describe_answers(project, r.answers, order)}
            for r in judgment.revisions.order_by("-version")
        ],
    }
    return render(request, "annotation/my_judgment.html", context, status=status)


urlpatterns = [
    path("projects/<slug:slug>/my-work/", my_work_page, name="my-work"),
    path("projects/<slug:slug>/my-work/<id:judgment_id>/", my_judgment_page, name="my-judgment"),
]
