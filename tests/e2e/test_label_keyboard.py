"""A rater logs in and labels with the keyboard alone, in a real chromium; the database then
holds answers in canonical positions that match what was on screen."""
from __future__ import annotations

import pytest

from annotation.kinds import Kind
from annotation.models import Assignment, Candidate, Item, Judgment

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

XSS_TEXTS = [
    "<script>window.__xss = 1; alert('script')</script>\n\n"
    "<img src=x onerror=\"window.__xss = 2; alert('img')\">\n\n"
    "[click me](javascript:window.__xss=3;alert('link'))\n\n"
    "<a href=\"javascript:window.__xss=4\">raw link</a>",
    "<svg onload=\"window.__xss = 5; alert('svg')\"></svg>\n\n"
    "<iframe src=\"javascript:parent.__xss=6\"></iframe>\n\n"
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)\n\n"
    "```html\n<script>window.__xss = 7</script>\n```",
]

CHAT_PROMPT = [
    {"role": "system", "content": "You are a concise Python tutor."},
    {"role": "user", "content": "How do I reverse a list in Python?"},
    {"role": "assistant", "content": "Do you want a new list or to change it in place?"},
    {"role": "user", "content": "A new list, please. Show code."},
]
CHAT_ANSWERS = [
    "Use slicing, which returns a **new** list:\n\n```python\nnumbers = [1, 2, 3]\nreversed_numbers = numbers[::-1]\nprint(reversed_numbers)  # [3, 2, 1]\n```",
    "You can call `reverse()`:\n\n```python\nnumbers = [1, 2, 3]\nnumbers.reverse()\n```\n\nNote that this changes `numbers` itself.",
]


def make_item(project, external_id, prompt, texts):
    item = Item.objects.create(project=project, external_id=external_id, prompt=prompt)
    Candidate.objects.bulk_create([Candidate(item=item, position=p, text=t) for p, t in enumerate(texts)])
    return item


def screen_positions(page) -> list[int]:
    return page.locator("#label-stage .candidate").evaluate_all("cards => cards.map(c => Number(c.dataset.position))")


def current_assignment(page) -> str | None:
    return page.evaluate("() => { const f = document.querySelector('form.label-item'); return f ? f.dataset.assignment : null; }")


def wait_for_next(page, previous: str) -> None:
    page.wait_for_function(
        "prev => { const f = document.querySelector('form.label-item'); return !f || f.dataset.assignment !== prev; }",
        arg=previous,
    )


def assert_inert(page) -> None:
    assert page.watch.dialogs == []
    assert page.evaluate("() => typeof window.__xss") == "undefined"
    active = page.evaluate(
        """() => [...document.querySelectorAll('#label-stage *')].filter(el =>
              ['SCRIPT', 'IFRAME', 'SVG', 'OBJECT', 'EMBED'].includes(el.tagName.toUpperCase()) ||
              [...el.attributes].some(a => a.name.startsWith('on') ||
                 (['href', 'src'].includes(a.name) && /^\\s*(javascript|data|vbscript):/i.test(a.value)))
           ).map(el => el.outerHTML.slice(0, 80))"""
    )
    assert active == []


def test_it_labels_a_binary_project_with_the_keyboard_alone(page, login, make_project, member):
    project = make_project(
        Kind.BINARY,
        slug="code-help",
        name="Code help: which answer is better?",
        instructions="Pick the answer that is **correct** and *clear*.\n\n- Prefer runnable code\n- Penalise wrong claims\n\n<script>window.__xss = 9</script>",
    )
    xss = make_item(project, "xss", "Summarise this text: <img src=x onerror=\"window.__xss=8\">", XSS_TEXTS)
    make_item(project, "chat", CHAT_PROMPT, CHAT_ANSWERS)
    plain = [make_item(project, f"q{i}", f"What is {i} + {i}?", [f"It is {2 * i}.", f"It is {2 * i + 1}, I think."]) for i in range(3)]

    login(member, f"/projects/{project.slug}/label/")
    assert page.evaluate("() => document.documentElement.classList.contains('js')"), "label.js did not run"

    # Item 1: the payloads. Nothing runs; the rater sees them as text and answers "tie".
    assert current_assignment(page) == str(Assignment.objects.get(rater=member, item=xss).id)
    assert "<script>window.__xss = 1" in page.locator("#label-stage").inner_text()
    assert_inert(page)
    page.keyboard.press("?")
    assert page.locator("#instructions").evaluate("d => d.open")
    assert page.locator("#instructions strong").inner_text() == "correct"
    page.keyboard.press("i")
    assert not page.locator("#instructions").evaluate("d => d.open")
    shown = current_assignment(page)
    page.keyboard.press("t")
    page.keyboard.press("Enter")
    wait_for_next(page, shown)
    assert_inert(page)

    # Item 2: the chat. The rater prefers the slicing answer (position 0) wherever it is shown,
    # and writes a rationale: R focuses the box, Esc leaves it so the shortcuts work again.
    assert [r.strip() for r in page.locator(".msg .role").all_text_contents()] == ["System", "User", "Assistant", "User"]
    # Code is highlighted: pygments spans, coloured by label.css (not the body's text colour).
    builtin = page.locator("#label-stage pre.highlight span.nb").first
    assert builtin.text_content() == "print"
    assert builtin.evaluate("el => getComputedStyle(el).color") != page.evaluate("() => getComputedStyle(document.body).color")
    page.wait_for_timeout(50)  # the rater reads for a moment
    page.screenshot(path="/tmp/arbiter_label_binary.png", full_page=True)
    order = screen_positions(page)
    shown = current_assignment(page)
    page.keyboard.press("r")
    page.keyboard.type("slicing keeps the original list")
    page.keyboard.press("Escape")
    page.keyboard.press("a" if order[0] == 0 else "b")
    assert page.locator(".choice.selected").count() == 1
    page.keyboard.press("Enter")
    wait_for_next(page, shown)
    assert page.locator("[data-progress=done_today]").inner_text() == "2"

    # Item 3 is skipped with S; the rest: the correct answer (position 0), chosen with the arrow
    # keys; the skipped item comes back at the end of the queue.
    skipped = current_assignment(page)
    page.keyboard.press("s")
    wait_for_next(page, skipped)
    answered = 0
    while current_assignment(page) is not None:
        order = screen_positions(page)
        shown = current_assignment(page)
        page.keyboard.press("ArrowLeft" if order[0] == 0 else "ArrowRight")
        page.keyboard.press("Enter")
        wait_for_next(page, shown)
        answered += 1
    assert answered == 3
    assert page.locator("[data-state=done]").is_visible()
    assert page.watch.errors == [] and page.watch.dialogs == []

    judgments = {j.item.external_id: j for j in Judgment.objects.filter(project=project, rater=member).select_related("item")}
    assert judgments["xss"].value == {"winner": "tie"}
    assert judgments["chat"].value == {"winner": 0}
    assert judgments["chat"].rationale == "slicing keeps the original list"
    assert Assignment.objects.get(id=int(skipped)).status == Assignment.Status.SUBMITTED
    for item in plain:
        assert judgments[item.external_id].value == {"winner": 0}
    for judgment in judgments.values():
        assert sorted(judgment.display_order) == [0, 1]
        assert judgment.display_order == judgment.assignment.display_order
        assert 0 < judgment.duration_ms < 120_000
        assert len(judgment.client_key) >= 32
    assert len(judgments) == 5


def test_it_labels_a_ranking_project_with_the_keyboard_alone(page, login, make_project, member):
    project = make_project(Kind.RANKING, slug="rank-four", name="Rank four answers", ranking_k=4, instructions="Best first.")
    for i in range(3):
        make_item(project, f"r{i}", f"Explain recursion, version {i}.", [f"Answer quality level {p} for prompt {i}." for p in range(4)])

    login(member, f"/projects/{project.slug}/label/")
    expected: dict[str, tuple[list, list]] = {}
    n = 0
    while current_assignment(page) is not None:
        order = screen_positions(page)
        shown = current_assignment(page)
        target = [3, 2, 1, 0]  # best first, by candidate position, wherever each is shown
        keys = [str(order.index(p) + 1) for p in target]
        if n == 0:
            # A slip: the wrong card first, undone with Backspace.
            page.keyboard.press(keys[3])
            assert page.locator(".candidate.placed").count() == 1
            page.keyboard.press("Backspace")
            assert page.locator(".candidate.placed").count() == 0
        if n == 1:
            keys = keys[:3]  # the last card left goes last by itself
        for key in keys:
            page.keyboard.press(key)
        if n == 0:
            assert page.locator("[data-ranking-order] li").count() == 4
            page.screenshot(path="/tmp/arbiter_label_ranking.png", full_page=True)
        page.keyboard.press("Enter")
        wait_for_next(page, shown)
        expected[shown] = ([[p] for p in target], order)
        n += 1
    assert n == 3
    assert page.watch.errors == [] and page.watch.dialogs == []

    judgments = Judgment.objects.filter(project=project, rater=member)
    assert judgments.count() == 3
    for judgment in judgments:
        ranking, order = expected[str(judgment.assignment_id)]
        assert judgment.value == {"ranking": ranking}
        assert judgment.display_order == order
        assert judgment.duration_ms > 0


def test_it_labels_likert_rating_and_tied_ranking_projects_with_the_keyboard_alone(page, login, make_project, member):
    likert = make_project(Kind.LIKERT, slug="likert-7", likert_points=7)
    make_item(likert, "l0", "Write a haiku about rain.", ["Soft rain on the roof", "Rain is water."])
    rating = make_project(Kind.RATING, slug="rate-three", rating_min=1, rating_max=5, rating_labels=["awful", "poor", "ok", "good", "great"])
    make_item(rating, "s0", "Name a prime number.", ["7", "9", "2"])

    # Likert: point 2 of 7 is "A better" (strength 2) for whichever response is on the left.
    login(member, f"/projects/{likert.slug}/label/")
    left = screen_positions(page)[0]
    shown = current_assignment(page)
    page.keyboard.press("2")
    assert page.locator(".choice.selected").inner_text().endswith("A better")
    page.keyboard.press("Enter")
    wait_for_next(page, shown)
    assert Judgment.objects.get(project=likert).value == {"winner": left, "strength": 2}

    # Rating: three responses; each score key scores the outlined one and moves on.
    page.goto(f"/projects/{rating.slug}/label/")
    order = screen_positions(page)
    wanted = {0: 5, 1: 1, 2: 4}  # by candidate position
    page.keyboard.press("Enter")  # too early: nothing is stored, the page says why
    assert "Score response A first" in page.locator("[data-status]").inner_text()
    for position in order:
        page.keyboard.press(str(wanted[position]))
    page.screenshot(path="/tmp/arbiter_label_rating.png", full_page=True)
    shown = current_assignment(page)
    page.keyboard.press("Enter")
    wait_for_next(page, shown)
    judgment = Judgment.objects.get(project=rating)
    assert judgment.value == {"scores": [5, 1, 4]}
    assert judgment.display_order == order

    # A ranking with a tie: "=" puts the next card in the same tier as the last one placed.
    tied = make_project(Kind.RANKING, slug="rank-ties", ranking_k=3, ranking_allow_ties=True)
    make_item(tied, "t0", "Pick the clearest.", ["one", "two", "three"])
    page.goto(f"/projects/{tied.slug}/label/")
    order = screen_positions(page)
    for key in [str(order.index(2) + 1), "=", str(order.index(0) + 1), str(order.index(1) + 1)]:
        page.keyboard.press(key)
    assert page.locator("[data-ranking-order] li").all_inner_texts()[0].count("=") == 1
    shown = current_assignment(page)
    page.keyboard.press("Enter")
    wait_for_next(page, shown)
    assert Judgment.objects.get(project=tied).value == {"ranking": [[0, 2], [1]]}
    assert page.watch.errors == [] and page.watch.dialogs == []
