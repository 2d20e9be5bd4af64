"""Nothing a rater needs is out of reach, measured in a real chromium at a laptop's 1366x768 and a
phone's 390x844: the last user turn of a 5-turn chat is on screen (labelling and adjudication),
every card of a 9-response ranking is on screen and placed by its key, the "Write a better
answer" control is visible on a phone and leaves the responses their room on a laptop, phone
buttons carry words and the header is one line, the keys panel shows W at the top, a skip
updates the skipped count, no page shows a Python dict, and the quality page fits a phone.

Screenshots go to $ARBITER_SCREENSHOT_DIR (default var/screenshots/), listed at the end of the run.
"""
from __future__ import annotations

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from annotation.kinds import Kind
from annotation.models import Judgment, Membership, Role
from tests.e2e.conftest import screenshot_path
from tests.e2e.test_label_keyboard import make_item
from tests.e2e.test_label_layout import CHAT, LAPTOP, PHONE, log_in, long_answer, sized_page  # noqa: F401  (sized_page: fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENS = {"laptop": LAPTOP, "phone": PHONE}

# Where the last user turn is, against the prompt box and the viewport.
LAST_TURN = """(root) => {
  const box = document.querySelector(root + ' .prompt');
  const turns = [...box.querySelectorAll('.msg.role-user')];
  const last = turns[turns.length - 1].getBoundingClientRect(), b = box.getBoundingClientRect();
  return {boxScrolls: box.scrollHeight > box.clientHeight + 1, text: turns[turns.length - 1].innerText,
          inBox: last.top >= b.top - 1 && last.bottom <= b.bottom + 1,
          onScreen: last.top >= 0 && last.bottom <= window.innerHeight};
}"""


def last_turn(page, root: str) -> dict:
    """Where the last user turn sits, once the page's script has scrolled the prompt box (it runs
    after layout, which takes longer on a busy machine): waits up to 5 s, then measures anyway."""
    try:
        page.wait_for_function(f"(root) => {{ const s = ({LAST_TURN})(root); return s.inBox && s.onScreen; }}", arg=root, timeout=5000)
    except PlaywrightTimeout:
        pass  # the assertion below reports what was seen
    return page.evaluate(LAST_TURN, root)


@pytest.mark.parametrize("screen", list(SCREENS))
def test_the_last_user_turn_of_a_long_chat_is_in_view(sized_page, make_project, member, owner, screen):
    project = make_project(Kind.BINARY, slug=f"chat-{screen}", allow_tie=True)
    # Three earlier exchanges, long enough that the capped prompt box must scroll.
    chat = CHAT[:4] + [{"role": "assistant", "content": "Here is more context. " * 12}, {"role": "user", "content": "And now: which month has most orders?"}]
    item = make_item(project, "chat-1", chat, [long_answer(0), long_answer(1)])
    page = sized_page(SCREENS[screen])
    log_in(page, member, f"/projects/{project.slug}/label/")
    seen = last_turn(page, "#label-stage")
    page.screenshot(path=screenshot_path(f"reach-chat-label-{screen}.png"))
    assert seen["boxScrolls"], "the chat is short enough to fit: the test measures nothing"
    assert seen["inBox"] and seen["onScreen"] and "which month" in seen["text"], seen

    # The adjudication page of the same item, as its manager sees it.
    rater2 = Membership.objects.create(project=project, user=owner, role=Role.MANAGER).user if not Membership.objects.filter(project=project, user=owner).exists() else owner
    for rater, winner in ((member, 0), (rater2, 1)):
        Judgment.objects.create(project=project, item=item, rater=rater, kind=project.kind, value={"winner": winner}, display_order=[0, 1])
    item.judgment_count = 2
    item.save(update_fields=["judgment_count"])
    manager = sized_page(SCREENS[screen])
    from tests.conftest import PASSWORD

    manager.goto(f"/accounts/login/?next=/projects/{project.slug}/adjudication/{item.id}/")
    manager.fill("input[name=username]", owner.username)
    manager.fill("input[name=password]", PASSWORD)
    manager.press("input[name=password]", "Enter")
    manager.wait_for_selector("#adjudicate-form")
    seen = last_turn(manager, ".adjudication-item")
    manager.screenshot(path=screenshot_path(f"reach-chat-adjudication-{screen}.png"))
    assert seen["boxScrolls"] and seen["inBox"] and seen["onScreen"], seen


@pytest.mark.parametrize("k", [5, 9])
def test_every_card_of_a_long_ranking_is_on_a_laptop_screen_and_placed_by_its_key(sized_page, make_project, member, k):
    project = make_project(Kind.RANKING, slug=f"rank-{k}", ranking_k=k)
    make_item(project, "r-1", CHAT, [long_answer(i) for i in range(k)])
    page = sized_page(LAPTOP)
    log_in(page, member, f"/projects/{project.slug}/label/")
    page.screenshot(path=screenshot_path(f"reach-ranking-{k}-laptop.png"))
    cards = page.locator("#label-stage .candidate").evaluate_all(
        "cards => cards.map(c => { const r = c.getBoundingClientRect(); return {left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width, height: r.height}; })")
    bar = page.locator("#label-stage .answer").bounding_box()
    assert len(cards) == k
    for i, card in enumerate(cards, start=1):
        assert card["left"] >= 0 and card["right"] <= LAPTOP["width"], f"card {i} runs off the screen: {card}"
        assert card["top"] >= 0 and card["bottom"] <= bar["y"] + 1, f"card {i} is below the answer row: {card}"
        assert card["width"] >= 230 and card["height"] >= 150, f"card {i} is too small to read: {card}"
    # The keys reach every card: 1..k place them in the order pressed; the last card gets its badge.
    for key in reversed(range(1, k + 1)):
        page.keyboard.press(str(key))
    assert page.locator("#label-stage .candidate").nth(k - 1).locator("[data-rank-badge]").inner_text() == "#1"
    assert page.locator("#label-stage .candidate").nth(0).locator("[data-rank-badge]").inner_text() == f"#{k}"


def test_a_phone_shows_the_demonstration_control_and_a_laptop_keeps_the_responses_readable(sized_page, make_project, member):
    project = make_project(Kind.BINARY, slug="demo-w", allow_tie=True, demonstrations="alongside")
    make_item(project, "d-1", CHAT, [long_answer(0), long_answer(1)])
    make_item(project, "d-2", CHAT, [long_answer(2), long_answer(3)])
    phone = sized_page(PHONE)
    log_in(phone, member, f"/projects/{project.slug}/label/")
    button = phone.get_by_role("button", name="Write a better answer")
    box = button.bounding_box()
    assert button.is_visible() and box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"], box
    phone.screenshot(path=screenshot_path("reach-demo-phone-closed.png"))
    # The whole answer row fits inside its card, Submit included.
    row = phone.locator("#label-stage .answer").bounding_box()
    for name in ("Write a better answer", "Skip", "Submit"):
        b = phone.get_by_role("button", name=name).bounding_box()
        assert b["x"] >= row["x"] and b["x"] + b["width"] <= row["x"] + row["width"], (name, b, row)
    button.click()
    editor = phone.locator("#demo-editor textarea[data-demo-text]")
    assert editor.is_visible()
    phone.screenshot(path=screenshot_path("reach-demo-phone-open.png"))

    laptop = sized_page(LAPTOP)
    log_in(laptop, member, f"/projects/{project.slug}/label/")
    # Listed with the other keys, at the top of the panel.
    laptop.keyboard.press("?")
    keys = laptop.locator("#instructions .shortcuts")
    assert "W" in keys.inner_text() and "better answer" in keys.inner_text()
    top = keys.bounding_box()
    assert top["y"] + top["height"] <= LAPTOP["height"], "the keys panel sits below the fold"
    laptop.keyboard.press("?")
    laptop.get_by_role("button", name="Write a better answer").click()
    assert laptop.locator("#demo-editor textarea[data-demo-text]").is_visible()
    laptop.screenshot(path=screenshot_path("reach-demo-laptop-open.png"))
    cards = laptop.locator("#label-stage .candidate").evaluate_all("cs => cs.map(c => c.getBoundingClientRect()).map(r => ({w: r.width, h: r.height, bottom: r.bottom}))")
    assert all(c["h"] >= 0.5 * LAPTOP["height"] and c["w"] >= 280 for c in cards), f"the open editor squeezes the responses: {cards}"
    editor_box = laptop.locator("#demo-editor").bounding_box()
    assert editor_box["y"] + editor_box["height"] <= LAPTOP["height"] + 1


PHONE_WORDS = {
    "binary": (Kind.BINARY, {"allow_tie": True, "allow_both_bad": True}, 2, ["A is better", "B is better", "Tie", "Both bad"]),
    "likert": (Kind.LIKERT, {"likert_points": 7}, 2, ["A much better", "About the same", "B much better"]),
    "rating": (Kind.RATING, {"rating_min": 1, "rating_max": 5, "rating_labels": ["awful", "poor", "ok", "good", "great"]}, 2, ["awful", "great"]),
}


@pytest.mark.parametrize("kind_name", list(PHONE_WORDS))
def test_phone_buttons_say_what_they_do_and_the_header_is_one_line(sized_page, make_project, member, kind_name):
    kind, settings, k, words = PHONE_WORDS[kind_name]
    project = make_project(kind, slug=f"words-{kind_name}", name="A rather long project name for a phone", **settings)
    make_item(project, "w-1", CHAT, [long_answer(i) for i in range(k)])
    page = sized_page(PHONE)
    log_in(page, member, f"/projects/{project.slug}/label/")
    page.screenshot(path=screenshot_path(f"reach-words-{kind_name}-phone.png"))
    shown = page.locator("#label-stage .answer").inner_text()
    for word in words:
        assert word in shown, f"{word!r} is not on the phone's buttons: {shown!r}"
    controls = page.locator("#label-stage .answer [data-choice], #label-stage .answer .scores.current .score > span, #label-stage .answer [data-action], #label-stage .answer [data-demo-action]")
    for i in range(controls.count()):
        box = controls.nth(i).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] and box["y"] + box["height"] <= PHONE["height"], (i, box)
    head = page.locator(".label-head").bounding_box()
    assert head["height"] <= 32, f"the header takes {head['height']} px"
    bar = page.locator("#label-stage .answer").bounding_box()
    assert bar["height"] <= 0.13 * PHONE["height"], bar
    # "Help" opens the keys and instructions over the page, the keys first and on screen.
    page.locator("#instructions summary").click()
    keys = page.locator("#instructions .shortcuts").bounding_box()
    assert keys and keys["y"] >= 0 and keys["y"] + 40 <= PHONE["height"] and keys["x"] + keys["width"] <= PHONE["width"], keys
    page.screenshot(path=screenshot_path(f"reach-words-{kind_name}-phone-help.png"))
    assert page.locator(".label-head").bounding_box()["height"] <= 32, "the header grew a line with the panel open"


def test_a_skip_updates_the_skipped_count_without_a_reload(sized_page, make_project, member):
    project = make_project(Kind.BINARY, slug="skips")
    for i in range(3):
        make_item(project, f"s-{i}", f"Question {i}?", ["yes", "no"])
    page = sized_page(LAPTOP)
    log_in(page, member, f"/projects/{project.slug}/label/")
    count = page.locator("[data-skipped-count]")
    assert not count.is_visible()
    page.evaluate("window.__same_page = true")
    page.keyboard.press("s")
    page.wait_for_function("() => !document.querySelector('[data-skipped]').hidden")
    assert count.inner_text() == "1 skipped, back at the end"
    page.keyboard.press("s")
    page.wait_for_function("() => document.querySelector('[data-skipped-count]').textContent.startsWith('2 ')")
    assert page.evaluate("window.__same_page") is True


def test_no_page_shows_a_python_dict(sized_page, make_project, add_items, member, owner, make_user):
    project = make_project(Kind.BINARY, slug="dicts", allow_tie=True)
    items = add_items(project, 3)
    alice = make_user("alice")
    Membership.objects.create(project=project, user=alice, role=Role.RATER)
    for item in items:
        for rater in (member, alice):
            Judgment.objects.create(project=project, item=item, rater=rater, kind=project.kind, value={"winner": 0}, display_order=[0, 1])
        Judgment.objects.create(project=project, item=item, rater=None, kind=project.kind, source="ai", value={"winner": "tie"},
                                ai_model="judge-lm", ai_template="default@abc", flags=["unsure"])
        item.judgment_count = 2
        item.save(update_fields=["judgment_count"])
    from tests.conftest import PASSWORD

    page = sized_page(LAPTOP)
    page.goto("/accounts/login/?next=/")
    page.fill("input[name=username]", owner.username)
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    page.wait_for_url("**/")
    for url in ("/", f"/projects/{project.slug}/", f"/projects/{project.slug}/quality/", f"/projects/{project.slug}/adjudication/?show=all",
                f"/projects/{project.slug}/adjudication/{items[0].id}/"):
        page.goto(url)
        page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
        text = page.locator("body").inner_text()
        assert "{'" not in text and "{\"" not in text, f"{url} shows a dict: {text[text.find('{') - 80:text.find('{') + 80]!r}"
    page.goto(f"/projects/{project.slug}/quality/")
    page.screenshot(path=screenshot_path("reach-quality-laptop.png"), full_page=True)
    assert "Where they disagree most" in page.locator("body").inner_text()

    # The manager's quality page on a phone: wide tables scroll inside their cards, the page does not.
    phone = sized_page(PHONE)
    phone.goto(f"/accounts/login/?next=/projects/{project.slug}/quality/")
    phone.fill("input[name=username]", owner.username)
    phone.fill("input[name=password]", PASSWORD)
    phone.press("input[name=password]", "Enter")
    phone.wait_for_selector("#raters")
    phone.screenshot(path=screenshot_path("reach-quality-phone.png"), full_page=True)
    width = phone.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the quality page is {width} px wide on a {PHONE['width']} px phone"
