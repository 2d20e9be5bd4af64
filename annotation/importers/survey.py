"""A quick look at a file before importing it: how many responses its items have, so that a
ranking project made from the file (import_items --create --kind ranking) takes its K range from
the file instead of refusing the file it was made from, and a refusal can name the K that fixes it.

One streaming pass over the records (the same reader as the import); records that are not
objects or whose responses are not a list are left to the import to report."""
from __future__ import annotations

from pathlib import Path

from annotation.importers.formats import readable_records


def response_counts(path: Path, *, fmt: str | None = None) -> tuple[int, int] | None:
    """(fewest, most) responses per item in the file, or None where no record has any (a prompt
    set, an unreadable file: the import says why)."""
    low = high = None
    with readable_records(path, fmt) as records:
        if records is None:
            return None
        for record in records:
            if "chosen" in record or "rejected" in record:
                n = 2  # a preference record is a pair
            elif isinstance(record.get("responses"), list) and record["responses"]:
                n = len(record["responses"])
            else:
                continue
            low = n if low is None else min(low, n)
            high = n if high is None else max(high, n)
    return None if low is None else (low, high)
