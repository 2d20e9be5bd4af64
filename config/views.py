"""Error pages that say what happened.

A database that does not answer (restarting, failing over, out of connections) is not a bug in
the request: it gets 503 with Retry-After and a reason, JSON for the API and a page for the
browser, so clients retry and people know to wait. Everything else is Django's plain 500.
"""
from __future__ import annotations

import sys

from django.conf import settings as django_settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.authtoken import views as authtoken_views
from rest_framework.response import Response

from config.security import LOCKED_OUT

DB_UNAVAILABLE = (
    "The database is not answering (restarting or overloaded); try again in a few seconds. "
    "A judgment sent again with the same client_key is stored once."
)
RETRY_AFTER = "5"


def database_unavailable(request) -> HttpResponse:
    if request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", ""):
        response = JsonResponse({"detail": DB_UNAVAILABLE, "code": "database_unavailable"}, status=503)
    else:
        response = HttpResponse(
            f"<!doctype html><title>Temporarily unavailable</title><h1>Temporarily unavailable</h1><p>{DB_UNAVAILABLE}</p>",
            status=503,
        )
    response["Retry-After"] = RETRY_AFTER
    return response


def server_error(request, template_name: str = "500.html") -> HttpResponse:
    # Django calls handler500 inside the `except` that caught the request's exception.
    if isinstance(sys.exc_info()[1], (OperationalError, InterfaceError)):
        return database_unavailable(request)
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Server error."}, status=500)
    return defaults.server_error(request, template_name)


class ObtainAuthToken(authtoken_views.ObtainAuthToken):
    """DRF's token view, answering 429 (not "wrong credentials") while the pair is locked out.
    Axes flags the DRF request, which its middleware (seeing Django's request) cannot read."""

    throttle_classes = ()  # logins are counted by axes; the write throttle is for signed-in users

    def post(self, request, *args, **kwargs):
        try:
            return super().post(request, *args, **kwargs)
        except exceptions.ValidationError:
            if getattr(request, "axes_locked_out", False):
                minutes = int(django_settings.AXES_COOLOFF_TIME.total_seconds() // 60)
                return Response(
                    {"detail": LOCKED_OUT, "retry_after_minutes": minutes},
                    status=status.HTTP_429_TOO_MANY_REQUESTS,
                    headers={"Retry-After": str(minutes * 60)},
                )
            raise
