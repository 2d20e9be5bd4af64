"""The four snapshot formats, written as JSONL and Parquet side by side, row by row.

- preference: {"prompt", "chosen", "rejected", "margin"?}  TRL RewardTrainer / DPOTrainer
- unpaired:   {"prompt", "completion", "label"}             TRL KTOTrainer
- sft:        {"prompt", "completion"}                      TRL SFTTrainer
- judgments:  every raw judgment (see JUDGMENT_FIELDS)

Chat prompts come out in TRL's conversational form: the prompt is a list of messages and each
response is [{"role": "assistant", "content": ...}]. A snapshot is either all text or all
conversational (one Parquet schema per file); when chat and text items are mixed, text prompts
become a single user message.

Memory stays flat: JSONL lines go straight to the file; each Parquet file is made from its JSONL
file afterwards by Arrow's streaming reader, one row group per BLOCK_BYTES of text.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from annotation.exports.options import FORMATS

SPLITS = ("train", "test")
# Each Parquet row group holds the rows of one block of JSONL text (a few thousand judgments).
BLOCK_BYTES = 8 << 20

# The raw judgment's fields, in file order. `value` is the canonical answer as a JSON string
# (its shape depends on the kind; a string keeps one schema for every kind).
JUDGMENT_FIELDS = (
    "item_id", "project", "prompt", "candidates", "kind", "value", "rater", "source", "ai_model",
    "display_order", "duration_ms", "rationale", "created_at",
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


# Compact-free JSON the way json.dumps writes it; non-ASCII text stays readable.
encode = json.JSONEncoder(ensure_ascii=False).encode


class _Output:
    """One (format, split): a JSONL file written line by line, converted to Parquet at close.

    The caller assembles each JSONL line from pieces it encoded once per item (a prompt shared by
    many rows is encoded once). The Parquet file is then made from the JSONL by Arrow's streaming
    JSON reader with the format's explicit schema: C++ parses the text block by block (1 MB at a
    time) and each batch becomes a row group, so no Python object is built per row for Parquet and
    memory stays flat. The two files therefore hold exactly the same rows."""

    def __init__(self, folder: Path, split: str, schema):
        folder.mkdir(parents=True, exist_ok=True)
        self.schema = schema
        self.jsonl_path = folder / f"{split}.jsonl"
        self.parquet_path = folder / f"{split}.parquet"
        self.jsonl = open(self.jsonl_path, "w", encoding="utf-8", buffering=1 << 20)
        self.count = 0

    def write(self, line: str) -> None:
        self.jsonl.write(line)
        self.count += 1

    def close(self) -> None:
        self.jsonl.close()
        jsonl_to_parquet(self.jsonl_path, self.parquet_path, self.schema)


def jsonl_to_parquet(source: Path, target: Path, schema, *, block_size: int = BLOCK_BYTES) -> None:
    """Stream a JSONL file into Parquet: one row group per block of text."""
    import pyarrow.json as pajson
    import pyarrow.parquet as pq

    with pq.ParquetWriter(target, schema, compression="zstd") as writer:
        if source.stat().st_size == 0:
            return
        reader = pajson.open_json(
            source,
            read_options=pajson.ReadOptions(block_size=block_size),
            parse_options=pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error"),
        )
        for batch in reader:
            # Fields keep the schema's order and types whatever order the text had.
            writer.write_batch(batch.select(schema.names).cast(schema) if batch.schema != schema else batch)


class SnapshotWriter:
    """All eight outputs of a snapshot, with one method per format."""

    def __init__(self, root: Path, *, chat: bool, with_margin: bool):
        self.chat = chat
        self.with_margin = with_margin
        all_schemas = schemas(chat=chat, with_margin=with_margin)
        self.outputs = {(fmt, split): _Output(root / fmt, split, all_schemas[fmt]) for fmt in FORMATS for split in SPLITS}

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

    def sft(self, split: str, prompt_json: str, completion_json: str) -> None:
        self.outputs[("sft", split)].write(f'{{"prompt": {prompt_json}, "completion": {completion_json}}}\n')

    def judgment(self, split: str, encoded: tuple[str, ...]) -> None:
        """`encoded`: the JSON text of each of JUDGMENT_FIELDS, in order."""
        self.outputs[("judgments", split)].write(JUDGMENT_LINE % encoded)

    def counts(self) -> dict[str, dict[str, int]]:
        return {fmt: {split: self.outputs[(fmt, split)].count for split in SPLITS} for fmt in FORMATS}

    def close(self) -> None:
        for output in self.outputs.values():
            output.close()
