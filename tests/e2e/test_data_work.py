"""In a real chromium: a rater writes a demonstration with W (rewriting the response they
prefer, with a preview), reviews and changes an answer on My work, and a manager adjudicates a
disputed item; the database then holds what the screens showed."""
from __future__ import annotations

import re

import pytest

from annotation.models import Adjudication, Candidate, Demonstration, Item, Judgment, JudgmentRevision, Membership, Project, Role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def make_item(project, external_id, prompt, texts):
    item = Item.objects.create(project=project, external_id=external_id, prompt=prompt)
    Candidate.objects.bulk_create([Candidate(item=item, position=p, text=t) for p, t in enumerate(texts)])
    return item


def current_assignment(page) -> str | None:
    return page.evaluate("() => { const f = document.querySelector('form.label-item'); return f ? f.dataset.assignment : null; }")


def wait_for_next(page, previous: str) -> None:
    page.wait_for_function(
        "prev => { const f = document.querySelector('form.label-item'); return !f || f.dataset.assignment !== prev; }",
        arg=previous,
    )


def test_a_rater_rewrites_the_preferred_response_with_w_and_then_changes_an_answer(page, login, make_project, member):
    project = make_project("binary", slug="write-better", name="Write better answers", demonstrations=Project.Demonstrations.ALONGSIDE)
    first = make_item(project, "w1", "How do I reverse a list?", ["Use `reversed()` or slicing.", "You cannot."])
    make_item(project, "w2", "What is 2 + 2?", ["4", "5"])

    login(member, f"/projects/{project.slug}/label/")
    order = page.locator("#label-stage .candidate").evaluate_all("cards => cards.map(c => Number(c.dataset.position))")
    shown = current_assignment(page)
    # Prefer position 0 wherever it is, then W: the editor opens with that response to rewrite.
    page.keyboard.press("a" if order[0] == 0 else "b")
    page.keyboard.press("w")
    editor = page.locator("#demo-editor")
    assert editor.is_visible()
    text = page.locator("[data-demo-text]")
    assert text.input_value() == "Use `reversed()` or slicing."
    assert page.evaluate("() => document.activeElement.hasAttribute('data-demo-text')")
    text.press("End")
    page.keyboard.type(" For a **new** list: `xs[::-1]`. <script>window.__xss = 1</script>")
    page.locator("[data-demo-action=preview]").click()
    page.wait_for_function("() => document.querySelector('[data-demo-preview] strong') !== null")
    assert page.locator("[data-demo-preview] strong").inner_text() == "new"
    assert page.evaluate("() => typeof window.__xss") == "undefined"
    text.press("Control+Enter")  # saves the response, does not submit the judgment
    page.wait_for_function("() => /Saved as a rewrite/.test(document.querySelector('[data-demo-status]').textContent)")
    assert current_assignment(page) == shown
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")
    wait_for_next(page, shown)

    demo = Demonstration.objects.get(rater=member)
    assert demo.item == first and demo.source_position == 0 and demo.source_text == "Use `reversed()` or slicing."
    assert demo.text.startswith("Use `reversed()` or slicing. For a **new** list")
    assert Judgment.objects.get(rater=member, item=first).value == {"winner": 0}

    # My work: the answer is listed, and changed to the other response within the window.
    page.goto(f"/projects/{project.slug}/my-work/")
    row = page.locator(f"#my-work-table tr[data-judgment='{Judgment.objects.get(item=first).id}']")
    assert row.locator("[data-answer]").inner_text() == ("A better" if order[0] == 0 else "B better")
    # Named by its prompt and the responses as the rater saw them, not by an id.
    assert "How do I reverse a list?" in row.locator("[data-item]").inner_text() and "You cannot." in row.inner_text()
    # The change by keyboard alone: Enter on the link, the screen's key for position 1, Ctrl+Enter.
    row.get_by_role("link", name="Change").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("form.change-answer[data-keys-ready]")  # the keys are bound (a busy machine runs the script later)
    page.keyboard.press("a" if order[0] == 1 else "b")
    assert page.locator("input[name=winner][value='1']").is_checked()
    page.locator("textarea[name=rationale]").fill("on reflection the second is honest")
    page.keyboard.press("Control+Enter")
    page.wait_for_url(re.compile(r".*/my-work/$"))
    assert "now version 2" in page.content()
    judgment = Judgment.objects.get(item=first)
    assert judgment.value == {"winner": 1} and judgment.version == 2
    assert JudgmentRevision.objects.get(judgment=judgment).value == {"winner": 0}
    page.screenshot(path="/tmp/arbiter_my_work.png", full_page=True)
    assert page.watch.errors == [] and page.watch.dialogs == []


def test_a_manager_adjudicates_the_most_disputed_item(page, login, make_project, owner, member, make_user):
    project = make_project("binary", slug="disputes", name="Disputed answers")
    other = make_user("second")
    Membership.objects.create(project=project, user=other, role=Role.RATER)
    calm = make_item(project, "calm", "Capital of France?", ["Paris", "Lyon"])
    split = make_item(project, "split", "Best sorting algorithm?", ["Quicksort", "It depends"])
    for item, winners in ((calm, (0, 0)), (split, (0, 1))):
        for rater, winner in zip((member, other), winners):
            Judgment.objects.create(project=project, item=item, rater=rater, kind="binary", value={"winner": winner}, display_order=[0, 1],
                                    rationale=f"{rater.username} thinks {winner}")
        Item.objects.filter(id=item.id).update(judgment_count=2)

    page.set_viewport_size({"width": 1366, "height": 768})  # a laptop: the page is shared with the phone tests
    login(owner, f"/projects/{project.slug}/")
    page.get_by_role("link", name="Adjudication").click()
    rows = page.locator("#adjudication-queue tbody tr")
    # Only the item that needs a decision: the calm one's raters agree.
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.item)") == ["split"]
    assert "Best sorting algorithm?" in rows.first.inner_text() and "Quicksort" in rows.first.inner_text()
    rows.first.get_by_role("link", name="Adjudicate").click()
    answers = page.locator("#rater-answers .rater-answer")
    assert answers.count() == 2
    assert "member thinks 0" in answers.nth(0).inner_text() and "second thinks 1" in answers.nth(1).inner_text()
    # Side by side on a laptop screen.
    boxes = [answers.nth(i).bounding_box() for i in range(2)]
    assert abs(boxes[0]["y"] - boxes[1]["y"]) < 5 and boxes[1]["x"] > boxes[0]["x"]
    page.wait_for_selector("form[data-answer-keys][data-keys-ready]")
    page.keyboard.press("b")  # the labelling page's key picks the answer here too
    assert page.locator("input[name=winner][value='1']").is_checked()
    page.locator("textarea[name=note]").fill("it depends is the honest answer")
    page.keyboard.press("Control+Enter")  # "Save and next"; none is left, so back to the list
    page.wait_for_url(re.compile(r".*/adjudication/$"))
    assert page.locator("#adjudication-queue tbody tr").count() == 0 and "No item needs a decision" in page.inner_text("main")
    page.goto(f"/projects/{project.slug}/adjudication/?show=all")
    assert page.locator("#adjudication-queue tbody tr").evaluate_all("rs => rs.map(r => r.dataset.item)") == ["split", "calm"]
    final = Adjudication.objects.get(item=split)
    assert final.value == {"winner": 1} and final.decided_by == owner
    page.screenshot(path="/tmp/arbiter_adjudication.png", full_page=True)
    assert page.watch.errors == [] and page.watch.dialogs == []
