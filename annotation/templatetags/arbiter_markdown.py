"""{{ text|render_markdown }}: untrusted markdown as sanitised HTML (annotation.rendering)."""
from django import template
from django.utils.safestring import mark_safe

from annotation.rendering import render_markdown as _render

register = template.Library()


@register.filter(name="render_markdown")
def render_markdown(text):
    # Safe to mark: the output went through the nh3 allow-list in annotation.rendering.
    return mark_safe(_render(text))
