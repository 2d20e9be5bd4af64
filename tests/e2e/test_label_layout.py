"""The labelling screen is built around the responses: measured in a real chromium at a laptop's
1366x768 and a phone's 390x844, for every judgment kind, under a 3-turn chat with long answers.

Laptop: the responses get >= 60% of the viewport height, side by side, each scrolling by itself;
the answer controls (the rating scale too) sit in one compact row under them, never over them.
Phone: the responses stack; scrolled to them they get >= 60% of the height, and the answer row
stays on screen (sticky) without hiding more than a strip of the text.

Screenshots of each kind at both sizes go to $ARBITER_SCREENSHOT_DIR (default var/screenshots/)
and are listed at the end of the run (tests/e2e/conftest.py), for a person to look at.
"""
from __future__ import annotations

import pytest

from annotation.kinds import Kind
from tests.e2e.conftest import screenshot_path
from tests.e2e.test_label_keyboard import make_item

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
SCREENS = {"laptop": LAPTOP, "phone": PHONE}
MIN_SHARE = 0.60

CHAT = [
    {"role": "user", "content": "I have a list of orders with dates. How do I group them by month in Python?"},
    {"role": "assistant", "content": "Do you use pandas, or plain Python?"},
    {"role": "user", "content": "Plain Python, please."},
    {"role": "assistant", "content": "Then `itertools.groupby` over the sorted list works. Shall I show it?"},
    {"role": "user", "content": "Yes, with an example, and explain the sort."},
]


def long_answer(n: int) -> str:
    code = "```python\nfrom itertools import groupby\n\norders.sort(key=lambda o: o.date)\nfor month, group in groupby(orders, key=lambda o: (o.date.year, o.date.month)):\n    print(month, len(list(group)))\n```"
    paragraphs = [f"Answer {n}, part {p}: groupby only joins *neighbouring* equal keys, so sort by the same key first; otherwise one month appears several times." for p in range(8)]
    return "\n\n".join(paragraphs[:3] + [code] + paragraphs[3:])


KINDS = {
    "binary": (Kind.BINARY, {"allow_tie": True, "allow_both_bad": True}, 2),
    "likert": (Kind.LIKERT, {"likert_points": 7}, 2),
    "ranking": (Kind.RANKING, {"ranking_k": 4}, 4),
    "rating": (Kind.RATING, {"rating_min": 1, "rating_max": 5, "rating_labels": ["awful", "poor", "ok", "good", "great"]}, 3),
}

MEASURE = """() => {
  const vh = window.innerHeight, vw = window.innerWidth;
  const rect = el => el.getBoundingClientRect();
  const c = rect(document.querySelector('#label-stage .candidates'));
  const bar = rect(document.querySelector('#label-stage .answer'));
  const top = Math.max(c.top, 0), bottom = Math.min(c.bottom, vh);
  const covered = Math.max(0, Math.min(bottom, bar.bottom) - Math.max(top, bar.top));
  const controls = [...document.querySelectorAll('#label-stage .answer [data-choice], #label-stage .answer .score > span,'
                    + ' #label-stage .answer [data-action]')].filter(el => el.offsetParent !== null).map(rect);
  return {
    vh, vw, visible: Math.max(0, bottom - top) - covered,
    bar: {top: bar.top, bottom: bar.bottom, height: bar.height}, candidatesBottom: c.bottom,
    controlsInView: controls.length > 0 && controls.every(r => r.top >= 0 && r.bottom <= vh && r.left >= 0 && r.right <= vw),
    controls: controls.length,
    cards: [...document.querySelectorAll('#label-stage .candidate')].map(el => { const r = rect(el); return {top: r.top, bottom: r.bottom, left: r.left,
            scrolls: el.scrollHeight > el.clientHeight + 1}; }),
    pageScrolls: document.documentElement.scrollHeight > vh + 1,
  };
}"""


@pytest.fixture
def sized_page(browser, live_server):
    contexts = []

    def open_at(viewport):
        context = browser.new_context(base_url=live_server.url, viewport=viewport, device_scale_factor=1)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        # A failed request (a favicon's 404 among them) counts as an error of the page.
        page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        page.errors = errors
        return page

    yield open_at
    for context in contexts:
        context.close()


def log_in(page, user, next_url):
    from tests.conftest import PASSWORD

    page.goto(f"/accounts/login/?next={next_url}")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    page.wait_for_url(f"**{next_url}")
    page.wait_for_selector("form.label-item")


def open_label_screen(sized_page, make_project, member, kind_name: str, screen: str):
    """A project of the kind with one long chat item, its labelling screen opened by the member at
    the screen's size, a screenshot of it, and the first measurement."""
    kind, settings, k = KINDS[kind_name]
    project = make_project(kind, slug=f"{screen}-{kind_name}", name=f"{screen.title()} {kind_name}", **settings)
    make_item(project, "chat", CHAT, [long_answer(i) for i in range(k)])
    size = SCREENS[screen]
    page = sized_page(size)
    log_in(page, member, f"/projects/{project.slug}/label/")
    page.screenshot(path=screenshot_path(f"label-{kind_name}-{screen}-{size['width']}x{size['height']}.png"))
    return page, measure(page, f"{screen} {kind_name}")


def measure(page, what: str) -> dict:
    """MEASURE, plus the responses' share of the screen; printed for the person reading the run."""
    m = page.evaluate(MEASURE)
    m["share"] = m["visible"] / m["vh"]
    print(f"{what}: responses {m['visible']:.0f}/{m['vh']} px ({m['share']:.0%}), answer row {m['bar']['height']:.0f} px")
    return m


@pytest.mark.parametrize("kind_name", list(KINDS))
def test_it_gives_the_responses_most_of_a_laptop_screen(sized_page, member, make_project, kind_name):
    page, m = open_label_screen(sized_page, make_project, member, kind_name, "laptop")
    assert m["share"] >= MIN_SHARE, m
    assert not m["pageScrolls"], "the page itself should not scroll; the responses do"
    assert m["bar"]["top"] >= m["candidatesBottom"] - 1, "the answer row covers the responses"
    assert m["bar"]["bottom"] <= m["vh"] and m["controlsInView"], m
    assert m["bar"]["height"] <= 60, f"the answer row is not one compact line: {m['bar']}"
    # Side by side, at one height, each scrolling by itself.
    tops = {round(card["top"]) for card in m["cards"]}
    assert len(tops) == 1 and all(card["scrolls"] for card in m["cards"]), m["cards"]
    page.locator("#label-stage .candidate").nth(1).evaluate("el => { el.scrollTop = 200; }")
    assert page.locator("#label-stage .candidate").nth(0).evaluate("el => el.scrollTop") == 0

    # The rationale box is closed until R; opened, the answer row is still on screen.
    rationale = page.locator("textarea[name=rationale]")
    assert not rationale.is_visible()
    page.keyboard.press("r")
    assert rationale.is_visible() and rationale.evaluate("el => el === document.activeElement")
    opened = page.evaluate(MEASURE)
    assert opened["controlsInView"] and opened["bar"]["top"] >= opened["candidatesBottom"] - 1
    page.keyboard.press("Escape")  # empty: the drawer closes again
    assert not rationale.is_visible()

    # A key press shows its effect where the rater is looking: the control lights up in the row.
    page.keyboard.press({"binary": "a", "likert": "2", "ranking": "1", "rating": "4"}[kind_name])
    lit = page.locator("#label-stage .choice.selected, #label-stage .score input:checked + span, #label-stage [data-ranking-order] li:not(.placeholder)")
    assert lit.count() == 1 and lit.first.is_visible()
    box = lit.first.bounding_box()
    assert 0 <= box["y"] and box["y"] + box["height"] <= m["vh"]
    page.screenshot(path=screenshot_path(f"label-{kind_name}-laptop-1366x768-answered.png"))
    assert page.errors == []


@pytest.mark.parametrize("kind_name", list(KINDS))
def test_it_stacks_the_responses_on_a_phone_and_keeps_the_controls_in_reach(sized_page, member, make_project, kind_name):
    page, m = open_label_screen(sized_page, make_project, member, kind_name, "phone")
    assert m["controlsInView"], "the answer row is not reachable on arrival"
    assert m["bar"]["height"] <= 0.12 * m["vh"], f"the answer row hides too much of a phone screen: {m['bar']}"
    lefts = {round(card["left"]) for card in m["cards"]}
    assert len(lefts) == 1 and all(a["bottom"] <= b["top"] for a, b in zip(m["cards"], m["cards"][1:])), "the responses do not stack"

    # Scrolled to the responses, they fill the screen above the answer row, which stays in reach.
    page.locator("#label-stage .candidate").first.evaluate("el => window.scrollTo(0, el.getBoundingClientRect().top + window.scrollY)")
    m = measure(page, f"phone {kind_name}, scrolled")
    assert m["share"] >= MIN_SHARE and m["controlsInView"], m
    page.keyboard.press({"binary": "b", "likert": "6", "ranking": "2", "rating": "3"}[kind_name])
    page.screenshot(path=screenshot_path(f"label-{kind_name}-phone-390x844-scrolled.png"))
    assert page.evaluate(MEASURE)["controlsInView"]
    assert page.errors == []
