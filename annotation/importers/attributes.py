"""HelpSteer-style files: one row per (prompt, response) with numeric attribute columns.

    {"prompt": "...", "response": "...", "helpfulness": 3, "correctness": 3, "coherence": 4,
     "complexity": 2, "verbosity": 1}

(JSONL, or CSV with those columns; an optional `model` names the response's model.) Rows that
share a prompt and follow each other become one item, its responses the candidates in file
order. A prompt's rows must be together, as HelpSteer2's are: a prompt met again after another
one is refused with the line it first appeared on (one item per prompt, and a file read once).

With --as-judgments (API: as_judgments) every item gets one imported judgment
(`Judgment.Source.IMPORT`) whose `answers` hold the attributes, one score per position
(`{"helpfulness": [3, 2], ...}`), checked against the project's per-response scale questions
by annotation.questions.validate_answers, like a rater's. Its primary value: a HelpSteer item is
judged in a `rating` project, and the primary rating is the `helpfulness` column (HelpSteer2's
headline attribute, the one its reward models predict alone), or the first attribute where the
file has no helpfulness; it must fit the project's rating scale. Other kinds have no primary
value to derive (a pair, a Likert strength or a ranking from five scores would be invented), so
such a file's judgments are refused there; its items alone import anywhere.

A bad row is named by its own line and the field (the attribute column) that is wrong; the
prompt's other rows are left out with it, so no item is imported with part of its responses.
`survey()` reads a file once before `import_items --create` to declare the questions.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from pathlib import Path

from annotation import kinds, questions
from annotation.importers.formats import ParsedItem, Response, _prompt, _text, check_count, readable_records, stable_id
from annotation.importers.records import ATTRIBUTE_ROW_KEYS, LineError, is_attribute_row
from annotation.kinds import Kind

PRIMARY = "helpfulness"
# HelpSteer and HelpSteer2 rate every attribute 0-4 (a Likert-5 scale).
HELPSTEER_ATTRIBUTES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
HELPSTEER_SCALE = (0, 4)


def attribute_columns(record: dict) -> list[str]:
    return [k for k in record if k not in ATTRIBUTE_ROW_KEYS]


def parse_rows(records: Iterator[tuple[int, dict | LineError]], *, project, as_judgments: bool) -> Iterator[tuple[int, ParsedItem | LineError]]:
    """(line, ParsedItem or LineError) from a HelpSteer-style file's rows: one item per prompt,
    reported at the line of its first row."""
    seen: dict[bytes, int] = {}  # prompt digest -> line of its first row (16 bytes a prompt)
    group: list[tuple[int, dict]] = []
    key = None
    for line, record in records:
        if isinstance(record, LineError):
            yield line, record
            continue
        if not is_attribute_row(record):
            yield line, LineError("response", "every row of a HelpSteer-style file has one 'response' (and a 'prompt')")
            continue
        prompt_key = _digest(record.get("prompt"))
        if prompt_key != key:
            if group:
                yield from _item(group, project=project, as_judgments=as_judgments)
            if prompt_key in seen:
                group, key = [], None
                yield line, LineError("prompt", f"repeats the prompt of line {seen[prompt_key]} after other prompts; keep a prompt's rows together")
                continue
            seen[prompt_key] = line
            group, key = [], prompt_key
        group.append((line, record))
    if group:
        yield from _item(group, project=project, as_judgments=as_judgments)


def _digest(prompt) -> bytes:
    return hashlib.blake2b(repr(prompt).encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _item(group: list[tuple[int, dict]], *, project, as_judgments: bool) -> Iterator[tuple[int, ParsedItem | LineError]]:
    first_line = group[0][0]
    others = ", ".join(str(line) for line, _ in group[1:])
    with_it = f" (the prompt's other rows, line {others}, are left out with it)" if others else ""
    try:
        prompt = _prompt(group[0][1]["prompt"])
    except LineError as exc:
        yield first_line, LineError(exc.field, exc.message + with_it)
        return
    responses = []
    for line, record in group:
        text, model = record["response"], record.get("model", "") or ""
        problem = None
        if not isinstance(text, str):
            problem = LineError("response", "must be a string")
        elif not isinstance(model, str) or len(model) > 200:
            problem = LineError("model", "must be a string of at most 200 characters")
        else:
            try:
                _text(text, "response")
            except LineError as exc:
                problem = exc
        if problem is not None:
            yield line, LineError(problem.field, problem.message + _others(group, line))
            return
        responses.append(Response(text, model))
    try:
        check_count(project, len(responses))
    except LineError as exc:
        yield first_line, LineError("prompt", f"{exc.message} (a prompt's rows are its responses)")
        return
    answers = preference = None
    if as_judgments:
        try:
            answers, preference = _judgment(group, project=project)
        except _RowError as exc:
            yield exc.line, LineError(exc.field, exc.message + _others(group, exc.line))
            return
    yield first_line, ParsedItem(stable_id(prompt, responses), False, prompt, responses, {}, None, preference, answers)


def _others(group, line: int) -> str:
    others = [str(n) for n, _ in group if n != line]
    return f" (the prompt's other rows, line {', '.join(others)}, are left out with it)" if others else ""


class _RowError(Exception):
    def __init__(self, line: int, field: str, message: str):
        super().__init__(message)
        self.line, self.field, self.message = line, field, message


def _judgment(group: list[tuple[int, dict]], *, project) -> tuple[dict, dict]:
    """(answers, primary value) of the item's imported judgment, or _RowError at the bad row."""
    if project.kind != Kind.RATING:
        raise _RowError(group[0][0], "as_judgments", f"a HelpSteer-style file's scores become rating judgments; this project is {project.kind}"
                        " (import into a rating project, or import the items alone)")
    scales = {q["key"]: q for q in questions.scale_questions(project) if q["per"] == questions.PER_RESPONSE}
    if not scales:
        raise _RowError(group[0][0], "as_judgments", "the project asks no per-response scale question to hold the attributes"
                        " (declare them, or let import_items --create declare them from the file)")
    raw: dict[str, list] = {}
    for position, (line, record) in enumerate(group):
        for column in attribute_columns(record):
            if column not in scales:
                raise _RowError(line, column, f"the project asks no such question (its scales: {', '.join(scales)})")
            value = record[column]
            if isinstance(value, float) and math.isnan(value):
                value = None  # an empty Parquet/pandas cell
            raw.setdefault(column, [None] * len(group))[position] = value
    try:
        answers = questions.validate_answers(project, raw, len(group))
    except kinds.InvalidValue as exc:
        key, _, rest = exc.field.removeprefix("answers.").partition("[")
        line = group[int(rest.rstrip("]"))][0] if rest else group[0][0]
        raise _RowError(line, key, exc.message) from None
    primary = PRIMARY if PRIMARY in answers else next(iter(answers), None)
    if primary is None:
        raise _RowError(group[0][0], "as_judgments", "no attribute to make the rating from: every score of this prompt is empty")
    scores = answers[primary]
    for position, score in enumerate(scores):
        if score is None or not project.rating_min <= score <= project.rating_max:
            raise _RowError(group[position][0], primary, f"becomes the rating and must be an integer from {project.rating_min} to {project.rating_max}")
    return answers, {"scores": list(scores)}


def survey(path: Path, *, fmt: str | None = None) -> dict[str, tuple[int, int, bool]] | None:
    """{attribute column: (min, max, answered on every row)} of a HelpSteer-style file (whole
    numbers only), or None when the file is not one. HelpSteer's five attributes take its 0-4 scale when the data fits."""
    found: dict[str, tuple[int, int]] = {}
    present: dict[str, int] = {}
    rows = 0
    with readable_records(path, fmt) as records:
        if records is None:
            return None
        for record in records:
            if not is_attribute_row(record):
                return None
            rows += 1
            for column in attribute_columns(record):
                value = record[column]
                if value is not None and value != "":
                    present[column] = present.get(column, 0) + 1
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                if type(value) is not int:
                    continue  # the import names the bad cell
                low, high = found.get(column, (value, value))
                found[column] = (min(low, value), max(high, value))
    if not found:
        return None
    # A column answered on every row is required of the project's raters too, as HelpSteer's were.
    required = {column for column, n in present.items() if n == rows}
    for column, (low, high) in found.items():
        if column in HELPSTEER_ATTRIBUTES and HELPSTEER_SCALE[0] <= low and high <= HELPSTEER_SCALE[1]:
            found[column] = HELPSTEER_SCALE
        elif low == high:
            found[column] = (low, low + 1)  # a scale needs two points
    return {column: (*scale, column in required) for column, scale in found.items()}


def declare(scales: dict[str, tuple[int, int, bool]]) -> list[dict]:
    """The questions a project made from the file asks: one per-response scale per column
    (raises questions.QuestionsError naming a column that cannot be a question's key)."""
    return questions.validate_questions(
        [{"key": key, "label": key.replace("_", " ").capitalize(), "type": questions.SCALE, "per": questions.PER_RESPONSE,
          "min": low, "max": high, "required": required} for key, (low, high, required) in scales.items()]
    )


def primary_scale(scales: dict[str, tuple[int, int, bool]]) -> tuple[str, int, int]:
    """The attribute that becomes the rating (see the module docstring) and its scale."""
    key = PRIMARY if PRIMARY in scales else next(iter(scales))
    return key, scales[key][0], scales[key][1]
