"""Reading import files, one record at a time: native JSONL, CSV and TRL preference files.

Nothing here reads a whole file: JSONL is iterated line by line on the binary stream, CSV through
the csv module on a text wrapper, gzip through a streaming decompressor. Each record becomes a
ParsedItem, or a LineError that names the field and the reason.

Formats
- Native JSONL (DESIGN.md): {"id", "prompt": text | [{"role", "content"}...],
  "responses": [{"text", "model"?, "metadata"?} | "text", ...], "metadata"?: {...},
  "gold"?: {"kind"?: <project kind>, ...canonical value (annotation.kinds)}}.
- TRL preference records, in a JSONL file or CSV: {"prompt"?, "chosen", "rejected", "margin"?}.
    explicit prompt: prompt + chosen + rejected (text, or lists of messages);
    implicit prompt, text: chosen and rejected are whole "\\n\\nHuman: ...\\n\\nAssistant: ..."
      transcripts; the prompt is their shared beginning up to its last "\\n\\nAssistant:" and
      becomes chat messages; each response is what follows that marker (so a response that
      itself runs on into "Human:" turns, as a few real ones do, stays whole);
    implicit prompt, conversational: chosen and rejected are message lists that share every
      message but the last, which is the assistant's answer.
  They become two-candidate items: position 0 = chosen, 1 = rejected (raters see a random
  on-screen order per assignment). Other keys go to the item's metadata.
- CSV (csvfile.py): a header row, then one item per row. Columns: id, prompt, metadata (JSON object), gold
  (JSON object) and the responses either as one `responses` column holding the JSON list of the
  native format, or as `response_1` .. `response_k` columns (text; empty cells are ignored, so
  rows may carry fewer responses than there are columns) with optional `model_1` .. `model_k`.
  A prompt cell holding a JSON list of {"role", "content"} objects is a chat prompt. A CSV with
  `chosen` and `rejected` columns is read as TRL records. Line numbers are those of the file
  (a quoted cell may span lines; the record's first line is reported).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings

from annotation import kinds, questions
from annotation.importers.csvfile import iter_csv
from annotation.importers.records import NATIVE_KEYS, LineError
from config import jsonlimits
from annotation.kinds import Kind

FORMATS = ("jsonl", "csv", "trl")
ROLES = {"system", "user", "assistant", "tool"}
MAX_ID = 200
ASSISTANT = "\n\nAssistant:"
_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant|System):")
_ROLE_OF = {"Human": "user", "Assistant": "assistant", "System": "system"}

@dataclass(slots=True)
class Response:
    text: str
    model: str = ""
    metadata: dict = field(default_factory=dict)


@dataclass(slots=True)
class ParsedItem:
    external_id: str
    explicit_id: bool
    prompt: str | list
    responses: list[Response]
    metadata: dict
    gold: dict | None = None
    # The canonical judgment value a preference record carries (chosen = position 0).
    preference: dict | None = None
    # The answers to the project's questions an imported judgment carries (attributes.py).
    answers: dict | None = None


# --- Opening and detecting ------------------------------------------------------------------


class InputTooLarge(LineError):
    """The file passed ARBITER_IMPORT_MAX_BYTES (decompressed) or a line passed
    ARBITER_IMPORT_MAX_LINE_BYTES; `line` is where. Reading stops there."""

    def __init__(self, line: int, field: str, message: str):
        super().__init__(field, message, fatal=True)
        self.line = line


class _Limited(io.RawIOBase):
    """Counts what is read through it (after gunzip) and stops at the limits, so a gzip bomb or
    a file without line breaks fails after at most a limit's worth of bytes, in constant memory,
    whatever reads it (the JSONL loop, csv through a text wrapper, format detection)."""

    def __init__(self, inner: BinaryIO, max_bytes: int, max_line: int):
        self.inner, self.max_bytes, self.max_line = inner, max_bytes, max_line
        self.total = 0  # bytes read so far
        self.lines = 0  # line breaks read so far
        self.run = 0  # bytes since the last line break

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self.inner.readinto(buffer)
        if not n:
            return n
        chunk = bytes(memoryview(buffer)[:n])
        self.total += n
        if self.total > self.max_bytes:
            raise InputTooLarge(
                self.lines + 1, "file",
                f"is larger than {self.max_bytes} bytes (ARBITER_IMPORT_MAX_BYTES) once decompressed; nothing was imported",
            )
        start = chunk.find(b"\n")
        if start < 0:
            self.run += n
            self._check(self.run, self.lines + 1)
            return n
        self._check(self.run + start, self.lines + 1)
        if n - start > self.max_line:
            # A whole line longer than the limit can only hide inside a chunk bigger than the
            # limit (never with the defaults: chunks are 256 KiB); look at each line then.
            line = self.lines + 1
            while (end := chunk.find(b"\n", start + 1)) >= 0:
                line += 1
                self._check(end - start - 1, line)
                start = end
        self.lines += chunk.count(b"\n")
        self.run = n - chunk.rindex(b"\n") - 1
        self._check(self.run, self.lines + 1)
        return n

    def _check(self, length: int, line: int) -> None:
        if length > self.max_line:
            raise InputTooLarge(
                line, "line",
                f"is longer than {self.max_line} bytes (ARBITER_IMPORT_MAX_LINE_BYTES); one record must fit on a line of that size",
            )


def open_binary(stream: BinaryIO) -> BinaryIO:
    """The stream, gunzipped while it is read when it starts with the gzip magic bytes, and
    bounded by ARBITER_IMPORT_MAX_BYTES and ARBITER_IMPORT_MAX_LINE_BYTES."""
    head = stream.read(2)
    stream.seek(0)
    if head == b"\x1f\x8b":
        stream = gzip.GzipFile(fileobj=stream, mode="rb")
    limited = _Limited(stream, settings.ARBITER_IMPORT_MAX_BYTES, settings.ARBITER_IMPORT_MAX_LINE_BYTES)
    return io.BufferedReader(limited, buffer_size=256 * 1024)


def detect_format(stream: BinaryIO, filename: str = "", fmt: str | None = None) -> str:
    """'jsonl' or 'csv' (how to split records), from fmt, the file name, or the first byte.
    TRL is a record shape, not a container: 'trl' files are JSONL (or CSV by extension)."""
    if fmt not in (None, "", *FORMATS):
        raise LineError("format", f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    name = filename.lower().removesuffix(".gz")
    if fmt == "csv" or (fmt in (None, "", "trl") and name.endswith(".csv")):
        return "csv"
    if fmt in ("jsonl", "trl") or name.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    data = open_binary(stream)
    try:
        first = data.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    except (OSError, EOFError) as exc:
        raise LineError("file", f"cannot read the file: {exc}") from exc
    finally:
        stream.seek(0)
    return "jsonl" if first in (b"{", b"") else "csv"


def iter_records(stream: BinaryIO, container: str) -> Iterator[tuple[int, dict | LineError]]:
    """(line number, record dict or LineError) for every record of the file, streaming."""
    data = open_binary(stream)
    try:
        if container == "csv":
            yield from iter_csv(data)
        else:
            yield from _iter_jsonl(data)
    except InputTooLarge as exc:
        yield exc.line, exc
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        yield 0, LineError("file", f"cannot read the file: {exc}", fatal=True)


def _lines(data: BinaryIO, size: int = 1024 * 1024) -> Iterator[bytes]:
    """The lines of a binary stream, split a megabyte at a time: iterating a BufferedReader over
    _Limited line by line cost ~5 us a line in attribute checks, a sixth of a large import."""
    tail = b""
    while chunk := data.read(size):
        lines = (tail + chunk if tail else chunk).split(b"\n")
        tail = lines.pop()
        yield from lines
    if tail:
        yield tail


def _iter_jsonl(data: BinaryIO) -> Iterator[tuple[int, dict | LineError]]:
    for number, raw in enumerate(_lines(data), start=1):
        if number == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        if not raw.strip():
            continue
        try:
            record = jsonlimits.loads(raw)
        except jsonlimits.UnsafeJSON as exc:
            # Nesting or a lone surrogate names its field; a line that is not JSON is the line's fault.
            yield number, LineError(exc.field or "line", exc.message)
            continue
        if not isinstance(record, dict):
            yield number, LineError("line", "must be a JSON object")
            continue
        yield number, record


# --- Records to items -----------------------------------------------------------------------


def _text(value: str, name: str, *, empty_ok: bool = True) -> str:
    """A prompt, message or response text within ARBITER_IMPORT_MAX_TEXT_CHARS (and not blank
    where blank means nothing to judge)."""
    limit = settings.ARBITER_IMPORT_MAX_TEXT_CHARS
    if len(value) > limit:
        raise LineError(name, f"is {len(value)} characters long; the limit is {limit} (ARBITER_IMPORT_MAX_TEXT_CHARS)")
    if not empty_ok and not value.strip():
        raise LineError(name, "must not be empty")
    return value


def _messages(value: Any, name: str) -> list[dict]:
    if not isinstance(value, list) or not value:
        raise LineError(name, "must be a non-empty list of messages")
    clean = []
    for i, message in enumerate(value):
        if not isinstance(message, dict):
            raise LineError(f"{name}[{i}]", "must be an object with role and content")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise LineError(f"{name}[{i}].role", f"must be one of {', '.join(sorted(ROLES))}")
        if not isinstance(content, str):
            raise LineError(f"{name}[{i}].content", "must be a string")
        clean.append({"role": role, "content": _text(content, f"{name}[{i}].content")})
    return clean


def _prompt(value: Any, name: str = "prompt") -> str | list:
    if isinstance(value, str):
        return _text(value, name, empty_ok=False)
    if isinstance(value, list):
        return _messages(value, name)
    raise LineError(name, "must be a string or a list of {role, content} messages")


def transcript_messages(text: str) -> list[dict]:
    """'\\n\\nHuman: hi\\n\\nAssistant: hello\\n\\nHuman: more' -> chat messages."""
    parts = _TURN.split(text)
    messages = []
    if parts[0].strip():
        messages.append({"role": "system", "content": parts[0].strip()})
    for speaker, content in zip(parts[1::2], parts[2::2]):
        messages.append({"role": _ROLE_OF[speaker], "content": content.strip()})
    return messages


def _is_transcript(text: str) -> bool:
    return text.lstrip("\n").startswith(("Human:", "System:"))


def _split_implicit(chosen: str, rejected: str) -> tuple[list, str, str]:
    common = 0
    limit = min(len(chosen), len(rejected))
    while common < limit and chosen[common] == rejected[common]:
        common += 1
    # The last assistant turn that both transcripts still share; after it they differ.
    cut = chosen.rfind(ASSISTANT, 0, common)
    if cut < 0:
        raise LineError("chosen", 'chosen and rejected share no "\\n\\nAssistant:" turn; give an explicit "prompt"')
    start = cut + len(ASSISTANT)
    prompt = transcript_messages(chosen[:cut])
    if not prompt:
        raise LineError("chosen", "the shared prompt before the last assistant turn is empty")
    return prompt, chosen[start:].strip(), rejected[start:].strip()


def _trl_item(record: dict) -> tuple[str | list, list[Response], dict]:
    chosen, rejected = record.get("chosen"), record.get("rejected")
    extra = {k: v for k, v in record.items() if k not in ("id", "prompt", "chosen", "rejected")}
    if "prompt" in record:
        prompt = record["prompt"]
        if isinstance(prompt, str) and _is_transcript(prompt):
            prompt = transcript_messages(prompt.rstrip().removesuffix("Assistant:").rstrip())
        prompt = _prompt(prompt)
        texts = []
        for name, value in (("chosen", chosen), ("rejected", rejected)):
            if isinstance(value, str):
                texts.append(value.strip())
            elif isinstance(value, list):
                turns = _messages(value, name)
                texts.append("\n\n".join(m["content"] for m in turns if m["role"] == "assistant") or turns[-1]["content"])
            else:
                raise LineError(name, "must be a string or a list of messages")
        return prompt, [Response(_text(texts[0], "chosen")), Response(_text(texts[1], "rejected"))], extra
    if isinstance(chosen, str) and isinstance(rejected, str):
        prompt, c, r = _split_implicit(chosen, rejected)
        for i, message in enumerate(prompt):
            _text(message["content"], f"chosen (prompt turn {i + 1})")
        return prompt, [Response(_text(c, "chosen")), Response(_text(r, "rejected"))], extra
    if isinstance(chosen, list) and isinstance(rejected, list):
        c_msgs, r_msgs = _messages(chosen, "chosen"), _messages(rejected, "rejected")
        if len(c_msgs) < 2 or c_msgs[:-1] != r_msgs[:-1] or len(r_msgs) != len(c_msgs):
            raise LineError("rejected", "chosen and rejected must share every message but the last")
        if c_msgs[-1]["role"] != "assistant" or r_msgs[-1]["role"] != "assistant":
            raise LineError("chosen", "the last message of chosen and rejected must be the assistant's")
        return c_msgs[:-1], [Response(_text(c_msgs[-1]["content"], "chosen")), Response(_text(r_msgs[-1]["content"], "rejected"))], extra
    raise LineError("chosen", "chosen and rejected must both be strings or both be message lists")


def _responses(value: Any, *, prompt_set: bool = False) -> list[Response]:
    if prompt_set and not value:
        return []  # a prompt set's item may be a prompt alone
    if not isinstance(value, list) or not value:
        hint = " (or make the project a prompt set to import prompts alone)" if value in (None, []) else ""
        raise LineError("responses", f"must be a non-empty list of responses{hint}")
    out = []
    for i, r in enumerate(value):
        if isinstance(r, str):
            # A bare string is the documented shorthand for {"text": ...}.
            out.append(Response(_text(r, f"responses[{i}]")))
            continue
        if not isinstance(r, dict):
            raise LineError(f"responses[{i}]", 'must be a string or {"text", "model"}')
        text, model, meta = r.get("text"), r.get("model", "") or "", r.get("metadata", {}) or {}
        if not isinstance(text, str):
            raise LineError(f"responses[{i}].text", "must be a string")
        # An empty text is a real answer (a model that said nothing; the HH-RLHF sample has
        # four): raters see "(empty response)" and exports write it back as "". Only a missing
        # or non-string text is an error.
        _text(text, f"responses[{i}].text")
        if not isinstance(model, str) or len(model) > 200:
            raise LineError(f"responses[{i}].model", "must be a string of at most 200 characters")
        if not isinstance(meta, dict):
            raise LineError(f"responses[{i}].metadata", "must be an object")
        out.append(Response(text, model, meta))
    return out


def stable_id(prompt: str | list, responses: list[Response]) -> str:
    """The id of an item that came without one: the same content always gets the same id."""
    blob = json.dumps([prompt, [r.text for r in responses]], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha1(blob.encode("utf-8")).hexdigest()


def _preference(project, margin: Any) -> dict:
    """The label a preference record carries (chosen = position 0), in the project's kind."""
    if project.kind == Kind.BINARY:
        return {"winner": 0}
    if project.kind == Kind.LIKERT:
        half = kinds.likert_half(project.likert_points)
        if margin is None:
            return {"winner": 0, "strength": 1}
        if isinstance(margin, bool) or not isinstance(margin, int | float) or margin != int(margin) or not 1 <= margin <= half:
            raise LineError("margin", f"must be a whole number between 1 and {half} to become the Likert strength")
        return {"winner": 0, "strength": int(margin)}
    if project.kind == Kind.RANKING:
        return {"ranking": [[0], [1]]}
    raise LineError("as_judgments", f"a preference cannot become a {project.kind} judgment (it has no scores)")


def check_count(project, n: int) -> None:
    """The project's candidate range (K) against an item's number of responses."""
    low, high = project.candidates_range
    # No responses is a prompt-set item (checked with the project's setting where responses are read).
    if n and not low <= n <= (high or n):
        needs = f"{low}" if low == high else f"{low} to {high}" if high else f"at least {low}"
        fix = ""
        if project.kind == Kind.RANKING:
            # Name the setting that fixes it: the file is probably right and the project's K too narrow.
            fix = (f": raise the project's most responses per item (max K, ranking_k) to {n}" if n > (high or 0)
                   else f": lower the project's fewest responses per item (min K, ranking_min_k) to {max(n, 2)}")
        raise LineError("responses", f"this {project.kind} project needs {needs} responses per item, got {n}{fix}")


def parse_record(record: dict, *, project, as_judgments: bool = False, trl_only: bool = False) -> ParsedItem:
    """One record (dict) -> ParsedItem for this project, or LineError naming the field."""
    is_trl = "chosen" in record or "rejected" in record
    if trl_only and not is_trl:
        raise LineError("chosen", "a TRL preference record needs 'chosen' and 'rejected'")
    if is_trl:
        for key in ("chosen", "rejected"):
            if key not in record:
                raise LineError(key, "is required in a preference record")
        prompt, responses, metadata = _trl_item(record)
        gold = None
        preference = _preference(project, metadata.get("margin")) if as_judgments else None
    else:
        unknown = sorted(set(record) - NATIVE_KEYS)
        if unknown:
            raise LineError(unknown[0], "unknown field; expected id, prompt, responses, metadata, gold")
        if "prompt" not in record:
            raise LineError("prompt", "is required")
        prompt = _prompt(record["prompt"])
        responses = _responses(record.get("responses"), prompt_set=bool(getattr(project, "prompt_set", False)))
        metadata = record.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise LineError("metadata", "must be an object")
        gold = _gold(record.get("gold"), project, len(responses)) if record.get("gold") is not None else None
        if as_judgments:
            raise LineError("as_judgments", "only preference records (chosen/rejected) carry a label to import")
        preference = None

    check_count(project, len(responses))

    raw_id = record.get("id")
    if raw_id is None or raw_id == "":
        return ParsedItem(stable_id(prompt, responses), False, prompt, responses, metadata, gold, preference)
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int):
        raise LineError("id", "must be a string or an integer")
    external_id = str(raw_id).strip()
    if not external_id or len(external_id) > MAX_ID:
        raise LineError("id", f"must be 1 to {MAX_ID} characters")
    return ParsedItem(external_id, True, prompt, responses, metadata, gold, preference)


def _gold(value: Any, project, n_candidates: int) -> dict:
    if not isinstance(value, dict):
        raise LineError("gold", "must be an object such as {\"kind\": \"binary\", \"winner\": 0}")
    answer = dict(value)
    kind = answer.pop("kind", project.kind)
    if kind != project.kind:
        raise LineError("gold.kind", f"is {kind!r} but the project's kind is {project.kind!r}")
    # The expected answers to the project's other questions (quality per question reads them);
    # a gold item may expect some of them only.
    extra = answer.pop("answers", None)
    try:
        gold = kinds.validate_value(project, answer, n_candidates)
        if extra is not None:
            gold["answers"] = questions.validate_answers(project, extra, n_candidates, enforce_required=False)
    except kinds.InvalidValue as exc:
        raise LineError(f"gold.{exc.field}", exc.message) from exc
    return gold


@contextmanager
def readable_records(path, fmt: str | None = None):
    """The file's well-formed records, for a quick look before importing it (importers/survey.py,
    attributes.survey); None when its format cannot be told (the import itself says why).
    Bad lines are skipped: the import reports them."""
    with Path(path).open("rb") as stream:
        try:
            container = detect_format(stream, Path(path).name, fmt)
        except LineError:
            yield None
            return
        yield (record for _, record in iter_records(stream, container) if not isinstance(record, LineError))
