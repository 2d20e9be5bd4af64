"""What a browser would execute in a piece of HTML: script elements, event-handler attributes,
and javascript:/data:/vbscript: URLs. Parsed like a browser tokenises tags, so text that merely
*shows* a payload (escaped as &lt;script&gt;) does not count."""
from __future__ import annotations

from html.parser import HTMLParser

DANGEROUS_SCHEMES = ("javascript:", "vbscript:", "data:")
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "srcdoc", "background", "poster"}
ACTIVE_TAGS = {"script", "iframe", "object", "embed", "svg", "math", "frame", "frameset", "base", "meta", "link", "style", "form"}


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def tags(html: str) -> list[tuple[str, dict]]:
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector.tags


def executable_parts(html: str, *, allow_tags: frozenset[str] = frozenset(), allow_script_src: tuple[str, ...] = ()) -> list[str]:
    """Everything in `html` that could run script; empty when the HTML is inert."""
    found = []
    for tag, attrs in tags(html):
        if tag == "script" and attrs.get("src", "").startswith(allow_script_src or ("\0",)) and attrs.get("src"):
            continue
        if tag == "script" and attrs.get("type") == "application/json":
            continue
        if tag in ACTIVE_TAGS and tag not in allow_tags:
            found.append(f"<{tag}>")
        for name, value in attrs.items():
            if name.startswith("on"):
                found.append(f"<{tag} {name}=...>")
            if name in URL_ATTRIBUTES and (value or "").strip().lower().replace("\t", "").replace("\n", "").startswith(DANGEROUS_SCHEMES):
                found.append(f"<{tag} {name}={value!r}>")
    return found
