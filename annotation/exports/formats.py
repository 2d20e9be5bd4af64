"""The four snapshot formats, written as JSONL and Parquet side by side, row by row.

- preference: {"prompt", "chosen", "rejected", "margin"?}  TRL RewardTrainer / DPOTrainer
- unpaired:   {"prompt", "completion", "label"}             TRL KTOTrainer
- sft:        {"prompt", "completion"}                      TRL SFTTrainer
- judgments:  every raw judgment (see JUDGMENT_FIELDS)

Chat prompts come out in TRL's conversational form: the prompt is a list of messages and each
response is [{"role": "assistant", "content": ...}]. A snapshot is either all text or all
conversational (one Parquet schema per file); when chat and text items are mixed, text prompts
become a single user message.

Memory stays flat: JSONL lines go straight to the file, Parquet rows are buffered up to
ROW_GROUP rows and written as one row group with pyarrow's ParquetWriter.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from annotation.exports.options import FORMATS

SPLITS = ("train", "test")
ROW_GROUP = 50_000

# The raw judgment's fields, in file order. `value` is the canonical answer as a JSON string
# (its shape depends on the kind; a string keeps one schema for every kind).
JUDGMENT_FIELDS = (
    "item_id", "project", "prompt", "candidates", "kind", "value", "rater", "source", "ai_model",
    "display_order", "duration_ms", "rationale", "created_at",
)


def as_messages(prompt: Any) -> list[dict[str, str]]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [{"role": str(m.get("role", "user")), "content": m.get("content") if isinstance(m.get("content"), str) else json.dumps(m.get("content"))} for m in prompt]


def export_prompt(prompt: Any, chat: bool) -> Any:
    return as_messages(prompt) if chat else prompt


def export_completion(text: str, chat: bool) -> Any:
    return [{"role": "assistant", "content": text}] if chat else text


def schemas(*, chat: bool, with_margin: bool) -> dict:
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
        "sft": pa.schema([("prompt", text), ("completion", text)]),
        "judgments": pa.schema(
            [
                ("item_id", pa.string()),
                ("project", pa.string()),
                ("prompt", text),
                ("candidates", pa.list_(candidate)),
                ("kind", pa.string()),
                ("value", pa.string()),
                ("rater", pa.string()),
                ("source", pa.string()),
                ("ai_model", pa.string()),
                ("display_order", pa.list_(pa.int64())),
                ("duration_ms", pa.int64()),
                ("rationale", pa.string()),
                ("created_at", pa.string()),
            ]
        ),
    }


class _Output:
    """One (format, split): a JSONL file and a Parquet file written in step."""

    def __init__(self, folder: Path, split: str, schema):
        import pyarrow.parquet as pq

        folder.mkdir(parents=True, exist_ok=True)
        self.schema = schema
        self.columns = schema.names
        self.jsonl = open(folder / f"{split}.jsonl", "w", encoding="utf-8")
        self.parquet = pq.ParquetWriter(folder / f"{split}.parquet", schema, compression="zstd")
        self.buffer: dict[str, list] = {name: [] for name in self.columns}
        self.count = 0
        self._dumps = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode

    def write(self, row: dict) -> None:
        self.jsonl.write(self._dumps(row))
        self.jsonl.write("\n")
        for name in self.columns:
            self.buffer[name].append(row.get(name))
        self.count += 1
        if len(self.buffer[self.columns[0]]) >= ROW_GROUP:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa

        if self.buffer[self.columns[0]]:
            table = pa.Table.from_pydict(self.buffer, schema=self.schema)
            self.parquet.write_table(table, row_group_size=ROW_GROUP)
            self.buffer = {name: [] for name in self.columns}

    def close(self) -> None:
        self.flush()
        self.jsonl.close()
        self.parquet.close()


class SnapshotWriter:
    """All eight outputs of a snapshot; `write(format, split, row)`."""

    def __init__(self, root: Path, *, chat: bool, with_margin: bool):
        self.chat = chat
        self.with_margin = with_margin
        all_schemas = schemas(chat=chat, with_margin=with_margin)
        self.outputs = {(fmt, split): _Output(root / fmt, split, all_schemas[fmt]) for fmt in FORMATS for split in SPLITS}

    def write(self, fmt: str, split: str, row: dict) -> None:
        self.outputs[(fmt, split)].write(row)

    def counts(self) -> dict[str, dict[str, int]]:
        return {fmt: {split: self.outputs[(fmt, split)].count for split in SPLITS} for fmt in FORMATS}

    def close(self) -> None:
        for output in self.outputs.values():
            output.close()
