"""A request body over DATA_UPLOAD_MAX_MEMORY_SIZE gets a 400 that says so, as JSON for API
clients, instead of Django's HTML error page (or, on a DRF JSON endpoint, which reads the body
without Django's check, the whole body in memory).

Two places catch it: the declared Content-Length, before anything reads the body; and Django's
RequestDataTooBig, raised while a view reads a form or multipart body that grew past the limit
(file parts of a multipart upload do not count: they stream to disk).
"""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse


def _wants_json(request: HttpRequest) -> bool:
    return (
        request.path.startswith("/api/")
        or request.content_type == "application/json"
        or "application/json" in request.headers.get("Accept", "")
    )


def too_big_response(request: HttpRequest) -> HttpResponse:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    message = f"The request body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE ({limit} bytes); send files as multipart uploads."
    if _wants_json(request):
        return JsonResponse({"detail": message, "code": "request_too_big", "limit": limit}, status=400)
    return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")


class RequestTooBigMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and not request.content_type.startswith("multipart/"):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                return too_big_response(request)
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception):
        if isinstance(exception, RequestDataTooBig):
            return too_big_response(request)
        return None
