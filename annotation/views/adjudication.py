"""Adjudication pages (managers): the most disputed items first, and one item with every
rater's answer and rationale side by side and the final-answer form.

GET       /projects/<slug>/adjudication/             the items that need a decision (raters disagree or
                                                     flagged it), lowest agreement first; ?show=all: every
                                                     item with two or more judgments
GET/POST  /projects/<slug>/adjudication/<item>/      one item; POST sets (or clears) the final answer;
                                                     action=set_next then opens the next item to decide
"""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_http_methods

from annotation import kinds, submission

from annotation.quality import consensus
from annotation.adjudication import adjudication_clear, adjudication_set, disagreement_queue, item_judgments, next_to_decide
from annotation.answer_form import answer_controls, cards_for, describe_answers
from annotation.labelling import chat_messages, value_from_form
from annotation.models import Adjudication, Demonstration, Item, Role
from annotation.my_work import describe_answer
from annotation.selectors import project_get_for_user


@login_required
@require_http_methods(["GET"])
def adjudication_page(request: HttpRequest, slug: str) -> HttpResponse:
    project, _ = project_get_for_user(user=request.user, slug=slug, role=Role.MANAGER)
    show_all = request.GET.get("show") == "all"
    queue = disagreement_queue(project=project, include_adjudicated=show_all, needing_decision=not show_all)
    return render(request, "annotation/adjudication.html", {"project": project, "queue": queue, "show_all": show_all})


@login_required
@require_http_methods(["GET", "POST"])
def adjudication_item_page(request: HttpRequest, slug: str, item_id: int) -> HttpResponse:
    project, _ = project_get_for_user(user=request.user, slug=slug, role=Role.MANAGER)
    item = Item.objects.filter(id=item_id, project=project).first()
    if item is None:
        raise Http404("No such item")
    # This page names responses by candidate position (A = the first imported), the same for
    # every rater whatever order each of them saw.
    cards = cards_for(item, [])
    order = [c["position"] for c in cards]
    judgments = item_judgments(project=project, item=item)
    current = Adjudication.objects.filter(item=item).first()
    status = 200
    note = current.note if current else ""
    if request.method == "POST":
        # Shown again as sent when it is refused: nothing the manager typed is lost.
        note = request.POST.get("note", "")
        if request.POST.get("action") == "clear":
            adjudication_clear(project=project, item=item)
            messages.success(request, "Final answer cleared.")
            return redirect("annotation:adjudication", slug=project.slug)
        try:
            value = value_from_form(project, request.POST, len(cards))
            adjudication_set(project=project, item=item, value=value, note=note, decided_by=request.user)
        except kinds.InvalidValue as invalid:
            messages.error(request, f"{invalid.field}: {invalid.message}")
            status = 400
        else:
            if request.POST.get("action") == "set_next":
                following = next_to_decide(project=project, after=item.id)
                if following is not None:
                    messages.success(request, "Final answer saved. Here is the next item that needs a decision.")
                    return redirect("annotation:adjudication-item", slug=project.slug, item_id=following)
                messages.success(request, "Final answer saved. No other item needs a decision now.")
                return redirect("annotation:adjudication", slug=project.slug)
            messages.success(request, "Final answer saved.")
            return redirect("annotation:adjudication", slug=project.slug)
    values = [j.value for j in judgments if j.kind == project.kind]
    agreed = consensus.item_consensus(project.kind, values, rating_threshold=project.rating_threshold) if values else None
    preset = current.value if current else (agreed.value if agreed else None)
    context = {
        "project": project,
        "item": item,
        "chat": chat_messages(item.prompt) if item.is_chat else [],
        "cards": cards,
        "answers": [
            {"rater": j.rater.get_username() if j.rater else "(removed)", "answer": describe_answer(j.kind, j.value, order), "rationale": j.rationale, "version": j.version,
             # The other questions' answers, read-only (the final answer is the judgment's alone).
             "questions": describe_answers(project, j.answers, order)}
            for j in judgments
        ],
        "demonstrations": list(Demonstration.objects.filter(item=item).select_related("rater")),
        "agreement": agreed.agreement if agreed else 0.0,
        "current": current,
        "note": note,
        "max_text": submission.MAX_RATIONALE,
        "current_answer": describe_answer(project.kind, current.value, order) if current else "",
        "controls": answer_controls(project, cards, preset),
    }
    return render(request, "annotation/adjudication_item.html", context, status=status)


urlpatterns = [
    path("projects/<slug:slug>/adjudication/", adjudication_page, name="adjudication"),
    path("projects/<slug:slug>/adjudication/<id:item_id>/", adjudication_item_page, name="adjudication-item"),
]
