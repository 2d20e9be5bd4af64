"""The API's JSON parser (REST_FRAMEWORK's DEFAULT_PARSER_CLASSES): DRF's, within the limits of
config.jsonlimits, so a hostile body is a 400 naming the field on every endpoint at once."""
from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from config import jsonlimits


class SafeJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        try:
            return jsonlimits.loads(raw)
        except jsonlimits.UnsafeJSON as exc:
            # DRF's shape for a body it cannot parse, with the field where the problem sits.
            detail = {"detail": f"JSON parse error - {exc.message}"}
            if exc.field:
                detail = {exc.field: [exc.message]}
            raise ParseError(detail) from None
