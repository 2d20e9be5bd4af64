"""Reading CSV import files: a header row, then one record per row (formats.py describes the
columns; attributes.py the HelpSteer-style `prompt, response, <attribute>...` layout).

Line numbers are those of the file (a quoted cell may span lines; the record's first line is
reported). Rows are read through the csv module on a text wrapper, never the whole file at once.
"""
from __future__ import annotations

import csv
import io
import re
import sys
from collections.abc import Iterator
from typing import Any, BinaryIO

from annotation.importers.records import ATTRIBUTE_ROW_KEYS, NATIVE_KEYS, LineError, is_attribute_row
from config import jsonlimits

# Cells of a real CSV may be long (a whole transcript); the default 128 KiB limit is too low.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def iter_csv(data: BinaryIO) -> Iterator[tuple[int, dict | LineError]]:
    text = io.TextIOWrapper(data, encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        return
    except (UnicodeDecodeError, csv.Error) as exc:
        yield 1, LineError("header", f"cannot read the CSV header ({exc})", fatal=True)
        return
    header = [h.strip() for h in header]
    problem = _csv_header_problem(header)
    if problem:
        yield 1, LineError("header", problem, fatal=True)
        return
    start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError:
            yield start, LineError("line", "is not valid UTF-8", fatal=True)
            return  # the decoder cannot resynchronise; everything after is suspect
        except csv.Error as exc:
            yield start, LineError("line", f"is not valid CSV ({exc})")
            start = reader.line_num + 1
            continue
        number, start = start, reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            yield number, LineError("line", f"has {len(row)} cells, the header has {len(header)}")
            continue
        try:
            yield number, _csv_record(dict(zip(header, row)))
        except LineError as exc:
            yield number, exc


_RESPONSE_COL = re.compile(r"^(response|model)_(\d+)$")


def _csv_header_problem(header: list[str]) -> str:
    """Columns no record could be read from. A file without response columns is a prompt set's
    (whether the project is one is checked per record)."""
    if len(set(header)) != len(header):
        return "column names must be unique"
    cols = set(header)
    if {"chosen", "rejected"} <= cols:
        return ""
    if {"prompt", "response"} <= cols and "responses" not in cols:
        return ""  # HelpSteer-style: every other column is an attribute (attributes.py checks them)
    known = NATIVE_KEYS | {"margin"}
    unknown = [h for h in header if h not in known and not _RESPONSE_COL.match(h)]
    if unknown:
        return f"unknown column(s) {', '.join(unknown)}; expected id, prompt, responses or response_1.., model_1.., metadata, gold"
    if "prompt" not in cols:
        return "a 'prompt' column is required"
    return ""


def _json_cell(value: str, name: str) -> Any:
    try:
        return jsonlimits.loads(value)
    except jsonlimits.UnsafeJSON as exc:
        raise LineError(f"{name}.{exc.field}" if exc.field else name, exc.message) from None


def _maybe_messages(value: str, name: str) -> str | list:
    """A cell holding a JSON list of messages is a chat; anything else is text."""
    if value.lstrip().startswith("["):
        try:
            parsed = jsonlimits.loads(value)
        except jsonlimits.UnsafeJSON as exc:
            # Meant as chat messages but not text: say so. Anything else that fails is plain text.
            if "surrogate" in exc.message:
                raise LineError(f"{name}.{exc.field}" if exc.field else name, exc.message) from None
            return value
        if isinstance(parsed, list) and parsed and all(isinstance(m, dict) and "role" in m for m in parsed):
            return parsed
    return value


def _number(cell: str) -> Any:
    """An attribute cell: an integer, a number, or the text itself (the check names it)."""
    for kind in (int, float):
        try:
            return kind(cell)
        except ValueError:
            continue
    return cell


def _csv_record(row: dict[str, str]) -> dict:
    if is_attribute_row(row):
        record: dict[str, Any] = {"prompt": _maybe_messages(row["prompt"], "prompt"), "response": row["response"]}
        if row.get("model"):
            record["model"] = row["model"]
        # An empty cell is an attribute left unanswered for this response.
        record.update({k: _number(v.strip()) for k, v in row.items() if k not in ATTRIBUTE_ROW_KEYS and v.strip()})
        return record
    if "chosen" in row and "rejected" in row:
        record: dict[str, Any] = {k: v for k, v in row.items() if v != "" or k in ("chosen", "rejected")}
        for key in ("prompt", "chosen", "rejected"):
            if key in record:
                record[key] = _maybe_messages(record[key], key)
        if "margin" in record:
            record["margin"] = _json_cell(record["margin"], "margin")
        return record
    record = {}
    if row.get("id", "").strip():
        record["id"] = row["id"].strip()
    record["prompt"] = _maybe_messages(row.get("prompt", ""), "prompt")
    if "responses" in row:
        record["responses"] = _json_cell(row["responses"], "responses") if row["responses"].strip() else []
    else:
        numbered = sorted((int(m.group(2)), h) for h in row if (m := _RESPONSE_COL.match(h)) and m.group(1) == "response")
        responses = []
        for n, col in numbered:
            if row[col] == "":
                continue
            responses.append({"text": row[col], "model": row.get(f"model_{n}", "")})
        record["responses"] = responses
    for key in ("metadata", "gold"):
        if row.get(key, "").strip():
            record[key] = _json_cell(row[key], key)
    return record
