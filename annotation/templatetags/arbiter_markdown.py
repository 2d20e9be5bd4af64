"""{{ text|render_markdown }}: untrusted markdown as sanitised HTML (annotation.rendering).
{{ card.text|render_response }}: the same for a response, with a muted "(empty response)" where
the text is empty, so an empty answer reads as an answer and not as a broken card."""
from django import template
from django.utils.safestring import mark_safe

from annotation.rendering import render_limit
from annotation.rendering import render_markdown as _render

register = template.Library()


@register.filter(name="render_markdown")
def render_markdown(text):
    # Safe to mark: the output went through the nh3 allow-list in annotation.rendering.
    return mark_safe(_render(text))


# An empty answer is a real answer in preference data (the HH-RLHF sample has four); blank space
# on the card would look like a page that failed to load.
EMPTY_RESPONSE = '<p class="muted empty-response">(empty response)</p>'


@register.filter(name="render_response")
def render_response(text):
    if not isinstance(text, str) or not text.strip():
        return mark_safe(EMPTY_RESPONSE)
    return render_markdown(text)


@register.inclusion_tag("annotation/_show_all.html")
def show_all(text, url):
    """{% show_all text url %}: past the render limit, a link to the whole text (plain text,
    loaded on demand by label.js, or opened as a page without JavaScript)."""
    length = len(text) if isinstance(text, str) else 0
    return {"truncated": length > render_limit(), "length": length, "url": url}
