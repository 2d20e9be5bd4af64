"""{{ text|render_markdown }}: untrusted markdown as sanitised HTML (annotation.rendering)."""
from django import template
from django.utils.safestring import mark_safe

from annotation.rendering import render_limit
from annotation.rendering import render_markdown as _render

register = template.Library()


@register.filter(name="render_markdown")
def render_markdown(text):
    # Safe to mark: the output went through the nh3 allow-list in annotation.rendering.
    return mark_safe(_render(text))


@register.inclusion_tag("annotation/_show_all.html")
def show_all(text, url):
    """{% show_all text url %}: past the render limit, a link to the whole text (plain text,
    loaded on demand by label.js, or opened as a page without JavaScript)."""
    length = len(text) if isinstance(text, str) else 0
    return {"truncated": length > render_limit(), "length": length, "url": url}
