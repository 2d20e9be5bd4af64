"""What every reader of import files shares: the error a bad record raises, and the native
record's keys (formats.py reads records, csvfile.py CSV rows, attributes.py HelpSteer-style rows)."""
from __future__ import annotations

NATIVE_KEYS = {"id", "prompt", "responses", "metadata", "gold"}
# A HelpSteer-style row (attributes.py): one response of a prompt, with numeric attribute columns
# beside these.
ATTRIBUTE_ROW_KEYS = ("prompt", "response", "model")


def is_attribute_row(record: dict) -> bool:
    """A row of a HelpSteer-style file: one `response` (not a native `responses` list, not a
    chosen/rejected pair)."""
    return "response" in record and "responses" not in record and "chosen" not in record and "rejected" not in record


class LineError(ValueError):
    """A bad record (field and reason). fatal: the file cannot be read on past it (no header,
    not gzip, too large, undecodable), so even --skip-invalid imports nothing from it: the lines
    after it were never read, and importing the ones before would lose them silently."""

    def __init__(self, field: str, message: str, *, fatal: bool = False):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.fatal = fatal
