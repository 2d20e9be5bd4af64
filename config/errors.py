"""Error pages inside the normal layout: what went wrong, why, and a way back.

A 403 says which role the action needs on which project (annotation.selectors.RoleRequired
carries both) and links back to the project; a 400 says what was wrong with the request. The
JSON API answers for itself (DRF); these are the browser's pages. Logging them is one line each
(config.log_filters.OneLineClientErrors), not a traceback.
"""
from __future__ import annotations

from django.shortcuts import render
from django.urls import reverse


def _back(request, exception) -> tuple[str, str]:
    project = getattr(exception, "project", None)
    if project is not None:
        return reverse("annotation:project-detail", kwargs={"slug": project.slug}), project.name
    return reverse("annotation:project-list"), "your projects"


def permission_denied(request, exception=None):
    back_url, back_name = _back(request, exception)
    reason = str(exception or "") or "Your role does not allow this."
    return render(request, "403.html", {"reason": reason, "back_url": back_url, "back_name": back_name}, status=403)


def csrf_failure(request, reason: str = ""):
    """A form posted without its CSRF token (usually: the page was open across a log-in or a long
    pause). Said plainly, with the way back, instead of Django's bare page."""
    back_url, back_name = _back(request, None)
    message = "This form had expired or came from another site, so nothing was saved. Go back, reload the page and send it again."
    return render(request, "403.html", {"reason": message, "back_url": back_url, "back_name": back_name}, status=403)


def bad_request(request, exception=None):
    back_url, back_name = _back(request, exception)
    reason = str(exception or "") or "The request could not be understood."
    return render(request, "400.html", {"reason": reason, "back_url": back_url, "back_name": back_name}, status=400)


def page_not_found(request, exception=None):
    return render(request, "404.html", {"back_url": reverse("annotation:project-list"), "back_name": "your projects"}, status=404)
