"""Guessing passwords and flooding writes: lockout (django-axes) and a per-user write throttle.

Logins (the login page, the admin's, `POST /api/token/`) go through `authenticate()`, where
django-axes counts failures per (username, client IP) pair: after ARBITER_LOGIN_FAILURE_LIMIT
wrong passwords that pair is locked for ARBITER_LOGIN_COOLOFF_MINUTES, while the same user
from another address still logs in, so an attacker cannot lock the real user out.

API writes are throttled per user by a fixed-window counter in the cache: one `incr` per
write request, no database round trip, so the rater's next/submit path stays as fast as it was.
"""
from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from rest_framework.throttling import BaseThrottle

LOCKED_OUT = "Too many failed logins for this account from your address. Try again later or from another network."


def client_ip(request: HttpRequest) -> str | None:
    """The client's address. Behind a proxy (ARBITER_BEHIND_PROXY) it is the last address in
    X-Forwarded-For, the one our own proxy appended; earlier ones are whatever the client sent."""
    meta = getattr(request, "META", {})
    if settings.ARBITER_BEHIND_PROXY:
        forwarded = meta.get("HTTP_X_FORWARDED_FOR", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1]
    return meta.get("REMOTE_ADDR")


def lockout_response(request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None) -> HttpResponse:
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": LOCKED_OUT, "retry_after_minutes": minutes}, status=429, headers={"Retry-After": str(minutes * 60)})
    response = render(request, "registration/locked_out.html", {"message": LOCKED_OUT, "minutes": minutes}, status=429)
    response["Retry-After"] = str(minutes * 60)
    return response


class WriteRateThrottle(BaseThrottle):
    """At most ARBITER_API_WRITE_RATE unsafe requests (POST/PUT/PATCH/DELETE) per user (or per
    address, signed out) in a fixed window. Reads are never throttled."""

    def __init__(self):
        self.limit, self.window = settings.ARBITER_API_WRITE_RATE
        self.wait_seconds = 0

    def allow_request(self, request, view) -> bool:
        if not self.limit or request.method in ("GET", "HEAD", "OPTIONS"):
            return True
        who = request.user.pk if request.user and request.user.is_authenticated else f"ip:{client_ip(request)}"
        now = time.time()
        window = int(now // self.window)
        key = f"throttle:write:{who}:{window}"
        try:
            count = cache.incr(key)
        except ValueError:  # first write of this window (or the key expired)
            count = 1 if cache.add(key, 1, self.window + 1) else cache.incr(key)
        if count <= self.limit:
            return True
        self.wait_seconds = (window + 1) * self.window - now
        return False

    def wait(self) -> float:
        return self.wait_seconds
