"""{{ user|sees_training }}: whether the top bar links to Training (annotation.selectors.sees_training)."""
from django import template

from annotation.selectors import sees_training as _sees_training

register = template.Library()


@register.filter(name="sees_training")
def sees_training(user) -> bool:
    # A page rendered without a request (an error page, a test) has no user: no link.
    return getattr(user, "is_authenticated", False) and _sees_training(user=user)
