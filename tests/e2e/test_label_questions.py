"""The labelling screen asks three attribute questions per response (helpfulness, correctness,
verbosity 0-4, HelpSteer2's layout) beside a binary judgment without hiding the responses,
measured in a real chromium at a laptop's 1366x768 and a phone's 390x844 under the 5-turn chat
of test_label_layout.py; answered with the keyboard alone (laptop) and by touch (phone); Submit
stays disabled, naming what is missing, until every required answer is given.

"Responses' share" here is the response *text* on screen: each card's area between its name and
its questions (the questions are not counted), less whatever the answer row covers.
Screenshots go to $ARBITER_SCREENSHOT_DIR (default var/screenshots/), listed at the end of the run.
"""
from __future__ import annotations

import pytest

from annotation import questions
from annotation.kinds import Kind
from annotation.models import Judgment
from tests.e2e.conftest import screenshot_path
from tests.e2e.test_label_keyboard import current_assignment, make_item, screen_positions, wait_for_next
from tests.e2e.test_label_layout import CHAT, LAPTOP, PHONE, log_in, long_answer, sized_page  # noqa: F401  (sized_page: fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ATTRIBUTES = [
    {"key": key, "label": key.title(), "type": "scale", "per": "response", "min": 0, "max": 4, "required": True, "help": f"How much {key}, 0 (none) to 4."}
    for key in ("helpfulness", "correctness", "verbosity")
]
# Measured here (chromium 1366x768 / 390x844): laptop 0.49, phone 0.85 (scrolled to the responses) with the
# questions; without questions the layout tests ask 0.60 of the whole cards (names included).
MIN_SHARE = {"laptop": 0.45, "phone": 0.60}
TOUCH = 40  # px: the smallest target a finger hits reliably

MEASURE = """() => {
  const vh = window.innerHeight, vw = window.innerWidth, r = el => el.getBoundingClientRect();
  const bar = r(document.querySelector('#label-stage .answer'));
  const cards = [...document.querySelectorAll('#label-stage .candidate')].map(card => {
    const c = r(card), head = r(card.querySelector('.candidate-head')), qs = r(card.querySelector('.cand-questions'));
    // The text a rater can read: under the card's name, above its questions and the answer row.
    let top = Math.max(head.bottom, 0, c.top), bottom = Math.min(qs.top, c.bottom, vh);
    if (bar.top < bottom && bar.bottom > top) bottom = Math.min(bottom, bar.top);
    return {top: c.top, left: c.left, text: Math.max(0, bottom - top), questions: qs.height,
            scrolls: card.scrollHeight > card.clientHeight + 1};
  });
  const controls = [...document.querySelectorAll('#label-stage .q-point > span, #label-stage .q-help summary,'
                    + ' #label-stage [data-choice], #label-stage [data-action=submit]')].filter(el => el.offsetParent !== null);
  return {vh, vw, cards, bar: {top: bar.top, bottom: bar.bottom, height: bar.height},
          text: cards.reduce((s, c) => s + c.text, 0), pageScrolls: document.documentElement.scrollHeight > vh + 1,
          controlsInView: controls.every(el => { const b = r(el); return b.top >= 0 && b.bottom <= vh && b.left >= 0 && b.right <= vw; }),
          smallest: controls.filter(el => el.closest('.question')).map(el => { const b = r(el); return Math.min(b.width, b.height); })
                            .reduce((a, b) => Math.min(a, b), 1e9)};
}"""


def asking_project(make_project, slug: str, n_items: int = 1):
    project = make_project(Kind.BINARY, slug=slug, name="Helpsteer pairs", questions=questions.validate_questions(ATTRIBUTES), allow_tie=True)
    make_item(project, "chat", CHAT, [long_answer(0), long_answer(1)])
    for i in range(1, n_items):
        make_item(project, f"q{i}", f"What is {i} + {i}?", [f"It is {2 * i}.", f"It is {2 * i + 1}, I think."])
    return project


def measure(page, what: str) -> dict:
    m = page.evaluate(MEASURE)
    side_by_side = len({round(c["top"]) for c in m["cards"]}) == 1
    # Side by side the cards share the rows of the screen: one card's text height is the share.
    m["share"] = (m["cards"][0]["text"] if side_by_side else m["text"]) / m["vh"]
    print(f"{what}: response text {m['share']:.0%} of {m['vh']} px, questions {m['cards'][0]['questions']:.0f} px per card, answer row {m['bar']['height']:.0f} px")
    return m


def submit_state(page) -> dict:
    return page.evaluate("""() => { const b = document.querySelector('#label-stage [data-action=submit]'), m = document.querySelector('#label-stage [data-missing]');
                                   return {disabled: b.disabled, missing: m.hidden ? '' : m.textContent}; }""")


def test_it_leaves_the_responses_most_of_a_laptop_screen_with_three_questions(sized_page, make_project, member):
    project = asking_project(make_project, "laptop-asks")
    page = sized_page(LAPTOP)
    log_in(page, member, f"/projects/{project.slug}/label/")
    page.screenshot(path=screenshot_path("label-questions-laptop-1366x768.png"))
    m = measure(page, "laptop binary + 3 questions")
    assert m["share"] >= MIN_SHARE["laptop"], m
    assert not m["pageScrolls"] and m["controlsInView"], m
    assert len({round(c["top"]) for c in m["cards"]}) == 1 and all(c["scrolls"] for c in m["cards"]), m["cards"]
    assert m["bar"]["height"] <= 60, m["bar"]
    # Compact: the three questions of a response take at most 12% of the screen under it.
    assert all(c["questions"] <= 0.12 * m["vh"] for c in m["cards"]), m["cards"]
    # Scrolling a response leaves its questions in place, at the card's foot.
    before = page.locator("#label-stage .cand-questions").first.bounding_box()
    page.locator("#label-stage .candidate").first.evaluate("el => { el.scrollTop = 400; }")
    after = page.locator("#label-stage .cand-questions").first.bounding_box()
    assert abs(after["y"] - before["y"]) < 1 and after["height"] == before["height"], (before, after)
    # The "?" opens the help over the text.
    page.locator("#label-stage .q-help summary").first.click()
    assert page.locator("#label-stage .q-help-body").first.is_visible()
    assert page.errors == []


def test_it_answers_every_question_with_the_keyboard_and_submits(sized_page, make_project, member):
    project = asking_project(make_project, "keys-asks", n_items=2)
    page = sized_page(LAPTOP)
    log_in(page, member, f"/projects/{project.slug}/label/")
    page.wait_for_function("() => document.documentElement.classList.contains('js')")
    order = screen_positions(page)
    shown = current_assignment(page)

    # Nothing answered: Submit is disabled and says what is missing; Enter does not store anything.
    state = submit_state(page)
    assert state["disabled"] and "Helpfulness (A, B)" in state["missing"] and "Verbosity (A, B)" in state["missing"], state
    page.keyboard.press("a")
    page.keyboard.press("Enter")
    assert "To answer first" in page.locator("#label-stage [data-status]").inner_text()
    assert not Judgment.objects.exists()
    # Enter also put the focus on the first question missing (A's helpfulness); Esc hands the keys back.
    assert page.evaluate("() => document.activeElement.closest('[data-question]').dataset.field") == f"q_helpfulness_{order[0]}"
    page.keyboard.press("Escape")

    # Q to the first question, then a digit per question: each moves on to the next one
    # (A's three, then B's three). Shift+Q goes back to correct one.
    page.keyboard.press("q")
    for key in "324":
        page.keyboard.press(key)
    page.keyboard.press("1")
    page.keyboard.press("0")
    page.keyboard.press("Shift+Q")
    page.keyboard.press("4")  # B's correctness again: 4, not 0
    state = submit_state(page)
    assert state["disabled"] and state["missing"] == "To answer: Verbosity (B)", state
    page.keyboard.press("2")
    state = submit_state(page)
    assert not state["disabled"] and state["missing"] == "", state
    # Tab walks the questions too (the browser's own order): from the judgment's buttons into A's questions.
    page.keyboard.press("Enter")
    wait_for_next(page, shown)

    judgment = Judgment.objects.get()
    a, b = order
    assert judgment.value == {"winner": a}
    expected = {"helpfulness": [None, None], "correctness": [None, None], "verbosity": [None, None]}
    for key, (on_a, on_b) in {"helpfulness": (3, 1), "correctness": (2, 4), "verbosity": (4, 2)}.items():
        expected[key][a], expected[key][b] = on_a, on_b
    assert judgment.answers == expected

    # The next item came as JSON, its questions drawn and unanswered, Submit held again.
    assert page.locator("#label-stage [data-question]").count() == 6
    assert page.locator("#label-stage .q-point input:checked").count() == 0
    assert submit_state(page)["disabled"]
    # Tab from the last judgment control reaches the questions (every control is keyboard-reachable).
    page.locator("#label-stage .q-point input").first.focus()
    page.keyboard.press("Tab")
    assert page.evaluate("() => !!document.activeElement.closest('[data-question], summary')")
    assert page.errors == []


def test_it_fits_a_phone_and_answers_by_touch(browser, live_server, make_project, member):
    project = asking_project(make_project, "phone-asks")
    context = browser.new_context(base_url=live_server.url, viewport=PHONE, device_scale_factor=1, has_touch=True, is_mobile=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        log_in(page, member, f"/projects/{project.slug}/label/")
        page.wait_for_function("() => document.documentElement.classList.contains('js')")
        page.screenshot(path=screenshot_path("label-questions-phone-390x844.png"))
        m = page.evaluate(MEASURE)
        assert m["smallest"] >= TOUCH, f"a question's target is {m['smallest']:.0f} px"
        assert m["bar"]["height"] <= 0.12 * m["vh"], m["bar"]
        assert not page.evaluate("() => document.documentElement.scrollWidth > window.innerWidth"), "the page scrolls sideways"
        # Scrolled to the responses, their text fills the screen above the sticky answer row.
        page.locator("#label-stage .candidate").first.evaluate("el => window.scrollTo(0, el.getBoundingClientRect().top + window.scrollY)")
        m = measure(page, "phone binary + 3 questions, scrolled")
        assert m["share"] >= MIN_SHARE["phone"], m
        page.locator("#label-stage .cand-questions").first.scroll_into_view_if_needed()
        page.screenshot(path=screenshot_path("label-questions-phone-390x844-questions.png"))

        order = screen_positions(page)
        page.locator("#label-stage [data-choice][data-key=b]").tap()
        assert submit_state(page)["disabled"]
        for card in range(2):
            for q, score in zip(ATTRIBUTES, (4, 3, 1)):
                point = page.locator(f"#label-stage .candidate >> nth={card}").locator(f"[data-key={q['key']}] .q-point:has(input[value='{score}']) > span")
                point.scroll_into_view_if_needed()
                point.tap()
        state = submit_state(page)
        assert not state["disabled"], state
        page.locator("#label-stage [data-action=submit]").tap()
        page.wait_for_selector("[data-state=done]")
        judgment = Judgment.objects.get()
        assert judgment.value == {"winner": order[1]}
        assert judgment.answers == {"helpfulness": [4, 4], "correctness": [3, 3], "verbosity": [1, 1]}
        assert errors == []
    finally:
        context.close()


def test_it_posts_the_plain_question_fields_without_javascript(browser, live_server, make_project, member):
    project = asking_project(make_project, "nojs-asks")
    context = browser.new_context(base_url=live_server.url, viewport=LAPTOP, java_script_enabled=False)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        log_in(page, member, f"/projects/{project.slug}/label/")
        order = screen_positions(page)
        # The browser's own check holds the form while a required scale is unset.
        page.locator("#label-stage [data-choice][data-key=a]").click()
        page.wait_for_timeout(500)  # a post would have landed by now
        assert not Judgment.objects.exists()
        assert page.locator("#label-stage input[name^=q_helpfulness_]:invalid").count() > 0
        for card, scores in zip(range(2), ((2, 3, 4), (0, 1, 2))):
            for q, score in zip(ATTRIBUTES, scores):
                page.locator(f"#label-stage .candidate >> nth={card}").locator(f"[data-key={q['key']}] .q-point:has(input[value='{score}']) > span").click()
        page.locator("#label-stage [data-choice][data-key=a]").click()
        page.wait_for_url(f"**/projects/{project.slug}/label/")
        judgment = Judgment.objects.get()
        a, b = order
        assert judgment.value == {"winner": a}
        assert judgment.answers["helpfulness"][a] == 2 and judgment.answers["helpfulness"][b] == 0
        assert judgment.answers["verbosity"][a] == 4 and judgment.answers["verbosity"][b] == 2
    finally:
        context.close()


def test_it_keeps_the_ranking_keys_and_answers_item_questions_by_keyboard(sized_page, make_project, member):
    asked = questions.validate_questions([
        {"key": "quality", "label": "Quality", "type": "scale", "per": "response", "min": 1, "max": 5, "required": True},
        {"key": "harm", "label": "Harm", "type": "labels", "per": "item", "choices": ["violence", "self_harm", "hate"]},
        {"key": "note", "label": "Note", "type": "text", "max_chars": 40},
    ])
    project = make_project(Kind.RANKING, slug="rank-asks", ranking_k=3, questions=asked)
    make_item(project, "q1", "Name a prime.", ["2", "9", "7"])
    page = sized_page(LAPTOP)
    log_in(page, member, f"/projects/{project.slug}/label/")
    page.wait_for_function("() => document.documentElement.classList.contains('js')")
    order = screen_positions(page)
    # A click on a question's point answers it and does not place the card in the ranking.
    page.locator("#label-stage .candidate >> nth=0").locator(".q-point:has(input[value='5']) > span").click()
    assert page.locator("#label-stage [data-ranking-order] li:not(.placeholder)").count() == 0
    # Digits go to the focused question; after Esc they rank again. (The click left the focus on A's
    # quality, where Q would move on from: Esc first, so Q starts at the first question.)
    page.keyboard.press("Escape")
    page.keyboard.press("q")
    for key in "543":
        page.keyboard.press(key)  # A, B, C's quality; then the focus is on Harm (the answer row)
    assert page.evaluate("() => document.activeElement.closest('[data-question]').dataset.key") == "harm"
    page.keyboard.press("3")  # toggles the third label, "hate"
    page.keyboard.press("q")
    page.keyboard.type("quite fine")  # the note box: Q is a letter here
    page.keyboard.press("Escape")
    for key in "132":
        page.keyboard.press(key)
    assert page.locator("#label-stage [data-ranking-order] li:not(.placeholder)").count() == 3
    page.screenshot(path=screenshot_path("label-questions-ranking-laptop-1366x768-answered.png"))
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-state=done]")
    judgment = Judgment.objects.get()
    quality = [None] * 3
    for shown, score in zip(order, (5, 4, 3)):
        quality[shown] = score
    assert judgment.answers == {"quality": quality, "harm": ["hate"], "note": "quite fine"}
    assert judgment.value == {"ranking": [[order[0]], [order[2]], [order[1]]]}
    assert page.errors == []


def test_it_changes_the_answers_in_my_work_by_keyboard(sized_page, make_project, member):
    project = asking_project(make_project, "mywork-asks")
    project.edit_window_minutes = 60
    project.save(update_fields=["edit_window_minutes"])
    page = sized_page(LAPTOP)
    log_in(page, member, f"/projects/{project.slug}/label/")
    page.wait_for_function("() => document.documentElement.classList.contains('js')")
    order = screen_positions(page)
    page.keyboard.press("a")
    page.keyboard.press("q")
    for key in "324102":
        page.keyboard.press(key)
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-state=done]")
    judgment = Judgment.objects.get()
    page.goto(f"/projects/{project.slug}/my-work/{judgment.id}/")
    page.wait_for_selector("form[data-keys-ready]")
    # The answers as given, preset; Tab reaches the questions and a digit sets the focused one.
    assert page.locator(f"input[name=q_helpfulness_{order[0]}]:checked").get_attribute("value") == "3"
    page.locator(f"input[name=q_helpfulness_{order[0]}]:checked").focus()
    page.keyboard.press("1")
    page.keyboard.press("Control+Enter")
    page.wait_for_url(f"**/projects/{project.slug}/my-work/")
    judgment.refresh_from_db()
    assert judgment.version == 2 and judgment.answers["helpfulness"][order[0]] == 1
    assert judgment.revisions.get().answers["helpfulness"][order[0]] == 3
    page.goto(f"/projects/{project.slug}/my-work/{judgment.id}/")
    page.screenshot(path=screenshot_path("my-judgment-questions-1366x768.png"), full_page=True)
    assert "Helpfulness: A 3, B 1" in page.locator("text=Earlier versions >> xpath=..").inner_text()
    assert page.errors == []
