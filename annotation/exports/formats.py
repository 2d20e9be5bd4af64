"""The four snapshot formats, written as JSONL and Parquet side by side, row by row.

- preference: {"prompt", "chosen", "rejected", "margin"?}  TRL RewardTrainer / DPOTrainer
- unpaired:   {"prompt", "completion", "label"}             TRL KTOTrainer
- sft:        {"prompt", "completion"}                      TRL SFTTrainer
- judgments:  every raw judgment (see JUDGMENT_FIELDS)
- prompts:    {"prompt"}: every item's prompt once, judged or not   online RL (PPO, RLOO, GRPO)
- attributes: {"prompt", "response", "<key>"..., "<key>_count"..., "item_id", "position", "model"}:
              the mean of each per-response scale question, HelpSteer2's layout (exports/answers.py)
- labels:     {"prompt", "response", "question", "label", "count", "of", "item_id", "position"}:
              per-label counts of the multi-label questions (exports/answers.py)

Chat prompts come out in TRL's conversational form: the prompt is a list of messages and each
response is [{"role": "assistant", "content": ...}]. A snapshot is either all text or all
conversational (one Parquet schema per file); when chat and text items are mixed, text prompts
become a single user message.

Memory stays flat: rows go out in chunks of CHUNK_CHARS of JSONL text, and each chunk becomes a
Parquet row group in a worker thread (see _Output).
"""
from __future__ import annotations

import hashlib
import io
import json
import queue
import threading
from pathlib import Path
from typing import Any

from annotation.exports.options import FORMATS

SPLITS = ("train", "test")
# Rows are written in chunks of about this much JSONL text; each chunk is one Parquet row group
# (about 2,000 raw judgments or 7,000 preference pairs of typical size).
CHUNK_CHARS = 2 << 20

# The raw judgment's fields, in file order. `value` is the canonical answer as a JSON string
# (its shape depends on the kind; a string keeps one schema for every kind).
JUDGMENT_FIELDS = (
    "item_id", "project", "prompt", "candidates", "kind", "value", "answers", "rater", "source", "ai_model",
    "display_order", "duration_ms", "rationale", "created_at", "version", "latest",
)

JUDGMENT_LINE = "{" + ", ".join(f'"{name}": %s' for name in JUDGMENT_FIELDS) + "}\n"


def as_messages(prompt: Any) -> list[dict[str, str]]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [{"role": str(m.get("role", "user")), "content": m.get("content") if isinstance(m.get("content"), str) else json.dumps(m.get("content"))} for m in prompt]


def export_prompt(prompt: Any, chat: bool) -> Any:
    return as_messages(prompt) if chat else prompt


def export_completion(text: str, chat: bool) -> Any:
    return [{"role": "assistant", "content": text}] if chat else text


def schemas(*, chat: bool, with_margin: bool, attribute_keys: tuple[str, ...] = ()) -> dict:
    import pyarrow as pa

    messages = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    text = messages if chat else pa.string()
    preference = [("prompt", text), ("chosen", text), ("rejected", text)]
    if with_margin:
        preference.append(("margin", pa.float64()))
    candidate = pa.struct([("position", pa.int64()), ("text", pa.string()), ("model", pa.string())])
    return {
        "preference": pa.schema(preference),
        "unpaired": pa.schema([("prompt", text), ("completion", text), ("label", pa.bool_())]),
        # source: agreed_best (the raters' best candidate), written (a rater's own response)
        # or rewrite (a rater's edit of a candidate).
        "sft": pa.schema([("prompt", text), ("completion", text), ("source", pa.string())]),
        "prompts": pa.schema([("prompt", text)]),
        "judgments": pa.schema(
            [
                ("item_id", pa.string()),
                ("project", pa.string()),
                ("prompt", text),
                ("candidates", pa.list_(candidate)),
                ("kind", pa.string()),
                ("value", pa.string()),
                # The answers to the project's questions (annotation.questions), a JSON string
                # like value ("{}" where the project asks none).
                ("answers", pa.string()),
                ("rater", pa.string()),
                ("source", pa.string()),
                ("ai_model", pa.string()),
                ("display_order", pa.list_(pa.int64())),
                ("duration_ms", pa.int64()),
                ("rationale", pa.string()),
                ("created_at", pa.string()),
                # A rater may change an answer (My work): every version is a row, the newest
                # one has latest = true, and only that one feeds the other formats.
                ("version", pa.int64()),
                ("latest", pa.bool_()),
            ]
        ),
        # HelpSteer2's column order: prompt, response, every attribute, every count, then where from.
        "attributes": pa.schema(
            [("prompt", text), ("response", pa.string())]
            + [(key, pa.float64()) for key in attribute_keys]
            + [(f"{key}_count", pa.int64()) for key in attribute_keys]
            + [("item_id", pa.string()), ("position", pa.int64()), ("model", pa.string())]
        ),
        "labels": pa.schema(
            [("prompt", text), ("response", pa.string()), ("question", pa.string()), ("label", pa.string()),
             ("count", pa.int64()), ("of", pa.int64()), ("item_id", pa.string()), ("position", pa.int64())]
        ),
    }


# Compact-free JSON the way json.dumps writes it; non-ASCII text stays readable.
encode = json.JSONEncoder(ensure_ascii=False).encode


class _Output:
    """One (format, split): a JSONL file and a Parquet file holding the same rows.

    The caller assembles each JSONL line from pieces it encoded once per item (a prompt shared by
    many rows is encoded once). Lines are gathered into chunks of CHUNK_CHARS; each chunk is
    appended to the JSONL file and handed to a worker thread, which parses it with Arrow's JSON
    reader against the format's explicit schema and writes it as one Parquet row group. Arrow
    does that in C++ without the GIL, so Parquet is written while Python prepares the next rows,
    and memory holds at most a few chunks, whatever the number of rows."""

    def __init__(self, folder: Path, split: str, schema):
        import pyarrow.parquet as pq

        folder.mkdir(parents=True, exist_ok=True)
        self.schema = schema
        self.jsonl = open(folder / f"{split}.jsonl", "wb")
        self.name = f"{folder.name}/{split}.jsonl"
        # The manifest's sha256 of the JSONL file, computed as it is written (no second read).
        self.digest = hashlib.sha256()
        self.parquet = pq.ParquetWriter(folder / f"{split}.parquet", schema, compression="zstd")
        self.parts: list[str] = []
        self.size = 0
        self.count = 0
        self.error: BaseException | None = None
        self.queue: queue.Queue = queue.Queue(maxsize=2)
        self.thread = threading.Thread(target=self._work, name=f"parquet-{folder.name}-{split}", daemon=True)
        self.thread.start()

    def write(self, line: str) -> None:
        self.parts.append(line)
        self.size += len(line)
        self.count += 1
        if self.size >= CHUNK_CHARS:
            self._flush()

    def _flush(self) -> None:
        if not self.parts:
            return
        data = "".join(self.parts).encode("utf-8")
        self.parts, self.size = [], 0
        self.jsonl.write(data)
        self.digest.update(data)
        if self.error is not None:
            raise RuntimeError(f"writing {Path(self.jsonl.name).name} as Parquet failed: {self.error}") from self.error
        self.queue.put(data)

    def _work(self) -> None:
        import pyarrow.json as pajson

        parse = pajson.ParseOptions(explicit_schema=self.schema, unexpected_field_behavior="error")
        while (data := self.queue.get()) is not None:
            if self.error is not None:
                continue  # keep draining so the writer never blocks on a full queue
            try:
                table = pajson.read_json(io.BytesIO(data), read_options=pajson.ReadOptions(use_threads=False, block_size=len(data) + 1), parse_options=parse)
                self.parquet.write_table(table.select(self.schema.names).cast(self.schema))
            except BaseException as exc:  # noqa: BLE001 - handed to the writing thread
                self.error = exc

    def close(self) -> None:
        try:
            self._flush()
        finally:
            self.queue.put(None)
            self.thread.join()
            self.jsonl.close()
            self.parquet.close()
        if self.error is not None:
            raise RuntimeError(f"writing {Path(self.jsonl.name).name} as Parquet failed: {self.error}") from self.error


class SnapshotWriter:
    """Every (format, split) output of a snapshot, with one method per format."""

    def __init__(self, root: Path, *, chat: bool, with_margin: bool, formats: tuple[str, ...] = FORMATS, attribute_keys: tuple[str, ...] = ()):
        self.chat = chat
        self.with_margin = with_margin
        self.formats = formats
        all_schemas = schemas(chat=chat, with_margin=with_margin, attribute_keys=attribute_keys)
        self.outputs = {(fmt, split): _Output(root / fmt, split, all_schemas[fmt]) for fmt in formats for split in SPLITS}

    # Each takes JSON texts encoded by the caller (once per item where a piece repeats).
    def preference(self, split: str, prompt_json: str, chosen_json: str, rejected_json: str, margin: float | None) -> None:
        if self.with_margin:
            line = f'{{"prompt": {prompt_json}, "chosen": {chosen_json}, "rejected": {rejected_json}, "margin": {float(margin)!r}}}\n'
        else:
            line = f'{{"prompt": {prompt_json}, "chosen": {chosen_json}, "rejected": {rejected_json}}}\n'
        self.outputs[("preference", split)].write(line)

    def unpaired(self, split: str, prompt_json: str, completion_json: str, label: bool) -> None:
        line = f'{{"prompt": {prompt_json}, "completion": {completion_json}, "label": {"true" if label else "false"}}}\n'
        self.outputs[("unpaired", split)].write(line)

    def sft(self, split: str, prompt_json: str, completion_json: str, source: str = "agreed_best") -> None:
        self.outputs[("sft", split)].write(f'{{"prompt": {prompt_json}, "completion": {completion_json}, "source": "{source}"}}\n')

    def prompt(self, split: str, prompt_json: str) -> None:
        self.outputs[("prompts", split)].write(f'{{"prompt": {prompt_json}}}\n')

    def judgment(self, split: str, encoded: tuple[str, ...]) -> None:
        """`encoded`: the JSON text of each of JUDGMENT_FIELDS, in order."""
        self.outputs[("judgments", split)].write(JUDGMENT_LINE % encoded)

    def line(self, fmt: str, split: str, line: str) -> None:
        """A line assembled by the caller (attributes, labels: exports/answers.py)."""
        self.outputs[(fmt, split)].write(line)

    def digests(self) -> dict[str, str]:
        """sha256 of every JSONL file, by path inside the snapshot (after close)."""
        return {output.name: output.digest.hexdigest() for output in self.outputs.values()}

    def counts(self) -> dict[str, dict[str, int]]:
        return {fmt: {split: self.outputs[(fmt, split)].count for split in SPLITS} for fmt in self.formats}

    def close(self) -> None:
        errors = []
        for output in self.outputs.values():
            try:
                output.close()
            except Exception as exc:  # noqa: BLE001 - close every file, then report the first error
                errors.append(exc)
        if errors:
            raise errors[0]
