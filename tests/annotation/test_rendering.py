"""Untrusted markdown (model output, imported prompts, instructions) renders readably and inertly."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.template import Context, Template

from annotation.rendering import pygments_css, render_markdown
from tests.annotation.htmlcheck import executable_parts, tags

PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](java\tscript:alert(1))",
    '<a href="javascript:alert(1)">click</a>',
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    '<iframe src="https://evil.example"></iframe>',
    "<iframe srcdoc='<script>alert(1)</script>'>",
    "[d](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![i](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "![i](javascript:alert(1))",
    "<object data=x></object><embed src=x>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    "<details open ontoggle=alert(1)>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<<script>script>alert(1)<</script>/script>",
    "[x](vbscript:msgbox(1))",
    "<form action=javascript:alert(1)><button>go</button></form>",
    "[ref]\n\n[ref]: javascript:alert(1)",
    "<https://ok.example/x?a=1&b=<script>>",
    "```html\n<script>alert(1)</script>\n```",
    "| <img src=x onerror=alert(1)> | b |\n|---|---|\n| [x](javascript:alert(1)) | <script>alert(1)</script> |",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_it_leaves_no_script_handler_or_js_url_in_the_output(payload):
    html = render_markdown(payload)
    assert executable_parts(html) == [], html
    assert "javascript:" not in " ".join(str(v) for _, attrs in tags(html) for v in attrs.values())


def test_it_shows_raw_html_as_text_for_the_rater_to_see():
    html = render_markdown("Try <script>alert(1)</script> and <img src=x onerror=alert(1)>")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_it_highlights_fenced_code_that_names_a_language():
    html = render_markdown("Here:\n\n```python\ndef add(a, b):\n    return a + b  # sum\n```\n")
    assert '<pre class="highlight"><code>' in html
    assert '<span class="k">def</span>' in html
    assert '<span class="nf">add</span>' in html
    assert '<span class="c1"># sum</span>' in html
    # Classes only: the colours come from label.css, so no inline style reaches the page.
    assert "style=" not in html


def test_it_keeps_markdown_inside_code_literal():
    html = render_markdown("```\n**not bold** <b>no</b> [x](javascript:alert(1))\n```")
    assert "<strong>" not in html and "<b>" not in html and "<a " not in html
    assert "**not bold** &lt;b&gt;no&lt;/b&gt; [x](javascript:alert(1))" in html
    inline = render_markdown("Use `<script>` and `**x**`")
    assert "<code>&lt;script&gt;</code>" in inline and "<code>**x**</code>" in inline


def test_it_shows_unknown_languages_plain_and_escaped():
    html = render_markdown('```nosuchlang" onmouseover="alert(1)\n<b>x</b>\n```')
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert executable_parts(html) == []
    assert "onmouseover" not in "".join(str(attrs) for _, attrs in tags(html))


def test_it_renders_ordinary_markdown_readably():
    html = render_markdown("# Title\n\nSome **bold**, *em*, ~~gone~~.\n\n1. one\n2. two\n\n> quote\n\n| a | b |\n|--:|---|\n| 1 | 2 |")
    for fragment in ["<h1>Title</h1>", "<strong>bold</strong>", "<em>em</em>", "<s>gone</s>", "<ol>", "<blockquote>", "<table>", '<th style="text-align:right">a</th>']:
        assert fragment in html, fragment


def test_it_keeps_safe_links_with_rel_noopener_and_drops_the_rest():
    html = render_markdown("[docs](https://example.org/a) [mail](mailto:a@example.org) [ftp](ftp://example.org/f)")
    found = [attrs for tag, attrs in tags(html) if tag == "a"]
    assert {"href": "https://example.org/a", "rel": "noopener noreferrer nofollow"} in found
    assert {"href": "mailto:a@example.org", "rel": "noopener noreferrer nofollow"} in found
    assert not any("ftp:" in (attrs.get("href") or "") for attrs in found)


def test_it_accepts_anything_that_is_not_text():
    assert render_markdown(None) == ""
    assert "42" in render_markdown(42)


def test_it_is_a_template_filter():
    out = Template("{% load arbiter_markdown %}{{ text|render_markdown }}").render(Context({"text": "**hi** <script>x</script>"}))
    assert out.strip() == "<p><strong>hi</strong> &lt;script&gt;x&lt;/script&gt;</p>"


def test_it_ships_the_generated_highlight_colours_in_label_css():
    css = Path(settings.BASE_DIR, "static/css/label.css").read_text()
    generated = pygments_css()
    assert ".md pre.highlight .k {" in generated
    assert generated in css, "regenerate the end of static/css/label.css from annotation.rendering.pygments_css()"
