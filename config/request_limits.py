"""A request body over DATA_UPLOAD_MAX_MEMORY_SIZE gets a 400 that says so, as JSON for API
clients, instead of Django's HTML error page (or, on a DRF JSON endpoint, which reads the body
without Django's check, the whole body in memory).

Two places catch it: the declared Content-Length, before anything reads the body; and Django's
RequestDataTooBig, raised while a view reads a form or multipart body that grew past the limit
(file parts of a multipart upload do not count: they stream to disk).

A file part is bounded on its way to disk instead: UploadLimitHandler, the first upload handler,
counts each file's bytes as they arrive and stops the upload past ARBITER_IMPORT_MAX_BYTES, so a
file over the limit is never written whole before the import refuses it.
"""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest, HttpResponse, JsonResponse


class UploadTooBig(RequestDataTooBig):
    """A file part of a multipart upload passed ARBITER_IMPORT_MAX_BYTES."""


class UploadLimitHandler(FileUploadHandler):
    """Counts each uploaded file's bytes and stops the upload once one passes the limit. It hands
    every chunk on unchanged to the next handler (memory or temporary file, Django's own)."""

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        limit = settings.ARBITER_IMPORT_MAX_BYTES
        if self.received > limit:
            raise UploadTooBig(f"file: {self.file_name} is larger than {limit} bytes (ARBITER_IMPORT_MAX_BYTES); nothing was imported")
        return raw_data

    def file_complete(self, file_size):
        return None  # the next handler builds the file


def _wants_json(request: HttpRequest) -> bool:
    return (
        request.path.startswith("/api/")
        or request.content_type == "application/json"
        or "application/json" in request.headers.get("Accept", "")
    )


def too_big_response(request: HttpRequest, upload: UploadTooBig | None = None) -> HttpResponse:
    if upload is not None:
        limit, message, code = settings.ARBITER_IMPORT_MAX_BYTES, str(upload), "upload_too_big"
    else:
        limit, code = settings.DATA_UPLOAD_MAX_MEMORY_SIZE, "request_too_big"
        message = f"The request body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE ({limit} bytes); send files as multipart uploads."
    if _wants_json(request):
        return JsonResponse({"detail": message, "code": code, "limit": limit}, status=400)
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
            return too_big_response(request, exception if isinstance(exception, UploadTooBig) else None)
        return None
