"""A huge untrusted text cannot hold the labelling page (issue 12, point 2): pages render the
first ARBITER_RENDER_MAX_CHARS characters as markdown and load the whole text, as plain text,
on demand ("show all"). Nothing is lost and nothing runs."""
from __future__ import annotations

import time

import pytest

from annotation.models import Candidate, Item, Membership
from annotation.rendering import render_head, render_markdown

pytestmark = pytest.mark.django_db

TEN_MB = 10 * 1000 * 1000


def big_markdown(chars: int, tail: str = "") -> str:
    para = "Some **bold** words, a [link](https://example.org) and `code` in a paragraph of a long answer.\n\n"
    text = para * (chars // len(para) + 1)
    return text[: chars - len(tail)] + tail


@pytest.fixture
def huge_item(project):
    item = Item.objects.create(project=project, external_id="huge", prompt="Which is better?")
    tail = "<script>alert('tail')</script> THE-END"
    Candidate.objects.create(item=item, position=0, text=big_markdown(TEN_MB, tail), model_name="a")
    Candidate.objects.create(item=item, position=1, text="A short answer.", model_name="b")
    return item


def test_it_renders_a_10_mb_response_quickly_and_offers_the_rest(client_for, member, project, huge_item):
    client = client_for(member)
    started = time.perf_counter()
    page = client.get(f"/projects/{project.slug}/label/")
    elapsed = time.perf_counter() - started
    assert page.status_code == 200
    html = page.content.decode()
    # Before the cap: ~13 s of markdown and a 20 MB page on every visit.
    assert elapsed < 5, f"the page took {elapsed:.1f} s"
    assert len(html) < 1_000_000
    assert f"Show all {TEN_MB} characters" in html
    assert "A short answer." in html
    assert "THE-END" not in html


def test_it_serves_the_whole_text_to_the_rater_holding_the_item_only(client_for, member, owner, outsider, make_user, project, huge_item):
    client = client_for(member)
    stage = client.get(f"/projects/{project.slug}/label/next/").json()
    assignment = stage["assignment"]
    url = f"/projects/{project.slug}/label/{assignment}/text/candidate-0/"
    assert url in stage["html"]
    r = client.get(url)
    assert r.status_code == 200
    assert r["Content-Type"] == "text/plain; charset=utf-8"
    assert r["X-Content-Type-Options"] == "nosniff"
    full = r.content.decode()
    assert full == Candidate.objects.get(item=huge_item, position=0).text  # nothing lost
    assert full.endswith("<script>alert('tail')</script> THE-END")  # as text, never as HTML
    assert client.get(f"/projects/{project.slug}/label/{assignment}/text/prompt/").content.decode() == "Which is better?"
    for bad in ("candidate-7", "prompt-0", "candidate-x", "nothing"):
        assert client.get(f"/projects/{project.slug}/label/{assignment}/text/{bad}/").status_code == 404
    other = make_user()
    Membership.objects.create(project=project, user=other, role="rater")
    assert client_for(other).get(url).status_code == 404
    assert client_for(owner).get(url).status_code == 404  # not the manager's assignment either
    assert client_for(outsider).get(url).status_code == 404
    assert client_for(None).get(url).status_code == 302


def test_it_offers_the_rest_of_a_long_chat_message(client_for, member, project):
    item = Item.objects.create(project=project, external_id="chat", prompt=[{"role": "user", "content": big_markdown(200_000, "LAST")}])
    Candidate.objects.create(item=item, position=0, text="a")
    Candidate.objects.create(item=item, position=1, text="b")
    client = client_for(member)
    stage = client.get(f"/projects/{project.slug}/label/next/").json()
    url = f"/projects/{project.slug}/label/{stage['assignment']}/text/prompt-0/"
    assert url in stage["html"] and "Show all 200000 characters" in stage["html"]
    assert client.get(url).content.decode().endswith("LAST")


def test_it_renders_short_texts_whole_and_cuts_long_ones_at_a_line_break(settings):
    settings.ARBITER_RENDER_MAX_CHARS = 1000
    short = "line\n" * 199
    assert render_head(short) == short
    head = render_head("word " * 100 + "\n" + "x" * 2000)
    assert head == "word " * 100
    assert len(render_head("y" * 5000)) == 1000
    # The cut is still sanitised markdown: an unclosed fence or tag cannot leak out.
    html = render_markdown("```\n" + "<img src=x onerror=alert(1)>\n" * 500)
    assert "<img" not in html and "onerror" in html  # shown as text inside the code block
