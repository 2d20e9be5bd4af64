"""Client errors (403, 400, 404 ...) are the client's doing: one line in the log, with the reason,
not a traceback. Django logs them through django.request / django.security with the exception
attached, which a plain handler prints in full; server errors (5xx) keep their traceback."""
from __future__ import annotations

import logging


class OneLineClientErrors(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if status is not None and 400 <= status < 500 and record.exc_info:
            exc = record.exc_info[1]
            reason = " ".join(str(exc).split()) if exc is not None else ""
            if reason:
                record.msg = f"{record.getMessage()} ({reason})"
                record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True
