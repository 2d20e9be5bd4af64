"""Importing items into a project: streaming, atomic, idempotent.

One pass over the file inside one transaction: each record is parsed and checked (prompt,
responses, candidate count against the project's kind, gold answer) and good records are
inserted in chunks of settings.ARBITER_IMPORT_BATCH_SIZE with multi-row INSERTs (rows.py).
After the first bad line the pass keeps checking, so every bad line is reported with its line
number, field and reason (the first MAX_ERRORS kept, the rest counted), but inserts nothing
more; at the end the transaction rolls back, ImportFailed is raised and the batch row says why.
Nothing is ever half-imported. (A first validation-only pass would spare the write lock on bad
files, but parsing twice costs a third of the time of a million-item import.)

skip_invalid (the command's --skip-invalid, the form's "skip the bad lines", the API's
"skip_invalid"): the good lines are imported and committed, and every bad line is left out and
listed on the batch (errors, lines_invalid), all of them, uncapped, so nothing is lost. A fatal
error (a file that cannot be read on: not gzip, no CSV header, too large) still imports nothing.

Ids already in the project are skipped (items_skipped), so re-importing a file adds nothing.
An id repeated inside one file is an error. Items without an id get a content hash as id; the
same content twice is skipped, not an error (the real hh-rlhf files contain such repeats).

Memory stays flat: records are read one at a time and go to the database a chunk at a time;
ids repeated in the file are found through the rows this import already inserted (good lines are
inserted even after a bad one, into the transaction that will roll back), not an in-memory set.

--as-judgments: a preference record (chosen over rejected) also becomes a Judgment with source
"import", rater None. Imported judgments do not bump Item.judgment_count/taken: those count
human judgments against the overlap, so an imported label never stops raters from labelling
the item; exports and agreement read imported labels by their source.
"""
from __future__ import annotations

import io
import json
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from itertools import chain, islice
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from annotation.importers.attributes import parse_rows
from annotation.importers.formats import LineError, ParsedItem, detect_format, iter_records, parse_record
from annotation.importers.records import is_attribute_row
from annotation.importers.rows import RowInserter
from annotation.importers.liveness import import_take_over, importing, runner_id
from annotation.models import Candidate, ImportBatch, Item, Judgment, Project
from annotation.selection import initial_priority, priorities_refresh

MAX_ERRORS = 1000


class ImportFailed(Exception):
    """Nothing was imported. errors: [{"line", "field", "message"}] (the first MAX_ERRORS);
    error_count: how many bad lines there were in all."""

    def __init__(self, errors: list[dict], error_count: int | None = None, batch: ImportBatch | None = None):
        self.errors = errors
        self.error_count = error_count if error_count is not None else len(errors)
        self.batch = batch
        super().__init__(f"{self.error_count} bad line(s); nothing imported")


class _Errors:
    """limit: how many to keep (the rest are counted); None keeps every one (skipped lines)."""

    def __init__(self, limit: int | None = MAX_ERRORS) -> None:
        self.items: list[dict] = []
        self.count = 0
        self.limit = limit
        self.fatal = False

    def add(self, line: int, field: str, message: str, *, fatal: bool = False) -> None:
        self.count += 1
        self.fatal = self.fatal or fatal
        if self.limit is None or len(self.items) < self.limit:
            self.items.append({"line": line, "field": field, "message": message})

    def report(self) -> list[dict]:
        report = sorted(self.items, key=lambda e: e["line"])
        if self.count > len(report):
            report.append({"line": 0, "field": "", "message": f"... and {self.count - len(report)} more errors"})
        return report


def _parsed(stream: BinaryIO, container: str, *, project: Project, as_judgments: bool, trl_only: bool) -> Iterator[tuple[int, ParsedItem | LineError]]:
    records = iter_records(stream, container)
    first = next(records, None)
    if first is None:
        return
    records = chain([first], records)
    # The first record says what the file is: a HelpSteer-style file's rows are grouped into
    # items by prompt (attributes.py); every other file has one item per record.
    if not trl_only and isinstance(first[1], dict) and is_attribute_row(first[1]):
        yield from parse_rows(records, project=project, as_judgments=as_judgments)
        return
    for line, record in records:
        if isinstance(record, LineError):
            yield line, record
            continue
        try:
            yield line, parse_record(record, project=project, as_judgments=as_judgments, trl_only=trl_only)
        except LineError as exc:
            yield line, exc


def _seekable(stream: BinaryIO) -> BinaryIO:
    """Format detection peeks at the start and rewinds; a pipe is spooled to a temporary file first
    (on disk, not in memory)."""
    try:
        if stream.seekable():
            stream.seek(0)
            return stream
    except (AttributeError, OSError):
        pass
    spool = tempfile.TemporaryFile()
    shutil.copyfileobj(stream, spool, 1024 * 1024)
    spool.seek(0)
    return spool


def _chunks(iterable: Iterable, size: int) -> Iterator[list]:
    it = iter(iterable)
    while chunk := list(islice(it, size)):
        yield chunk


class _Inserter:
    """Inserts chunks of parsed items; ids already in the project are skipped."""

    def __init__(self, *, project: Project, batch: ImportBatch, as_judgments: bool):
        self.project, self.batch, self.as_judgments = project, batch, as_judgments
        self.items = RowInserter(Item, ["project_id", "external_id", "prompt", "metadata", "gold", "is_gold", "import_batch_id", "priority"])
        self.candidates = RowInserter(Candidate, ["item_id", "position", "text", "model_name", "metadata"])
        self.judgments = RowInserter(Judgment, ["project_id", "item_id", "kind", "source", "value", "answers"])
        self.created = self.skipped = self.judged = 0
        self.priority = initial_priority(project)  # the project's next-item order (annotation/selection.py)

    def add(self, chunk: list[tuple[int, ParsedItem]]) -> list[tuple[int, str]]:
        """Insert the chunk's new items; return (line, id) of explicit ids this file already had.

        The database remembers which ids this import inserted (import_batch), so finding ids
        repeated in the file needs no memory that grows with the file."""
        found: dict[str, int | None] = {}
        for part in _chunks([p.external_id for _, p in chunk], 5000):
            found.update(Item.objects.filter(project=self.project, external_id__in=part).values_list("external_id", "import_batch_id"))
        repeats: list[tuple[int, str]] = []
        fresh: list[ParsedItem] = []
        for line, p in chunk:
            if p.external_id not in found:
                found[p.external_id] = self.batch.id
                fresh.append(p)
            elif p.explicit_id and found[p.external_id] == self.batch.id:
                repeats.append((line, p.external_id))
            else:
                # Already in the project from an earlier import (idempotent re-import), or the
                # same content twice in this file without ids: nothing to add.
                self.skipped += 1
        if fresh:
            self._insert(fresh)
        return repeats

    def _insert(self, fresh: list[ParsedItem]) -> None:
        project_id, batch_id = self.project.id, self.batch.id
        j_items, j_cands = self.items.json, self.candidates.json
        ids = self.items.insert(
            [(project_id, p.external_id, j_items(p.prompt), j_items(p.metadata), j_items(p.gold), p.gold is not None, batch_id,
              0.0 if p.gold is not None else self.priority()) for p in fresh],
            returning=True,
        )
        candidates = [
            (item_id, pos, r.text, r.model, j_cands(r.metadata)) for item_id, p in zip(ids, fresh) for pos, r in enumerate(p.responses)
        ]
        if candidates:  # a chunk of a prompt set's items may have none
            self.candidates.insert(candidates)
        if self.as_judgments:
            kind, source, j_value = str(self.project.kind), str(Judgment.Source.IMPORT), self.judgments.json
            rows = [(project_id, item_id, kind, source, j_value(p.preference), j_value(p.answers or {}))
                    for item_id, p in zip(ids, fresh) if p.preference is not None]
            self.judgments.insert(rows)
            self.judged += len(rows)
        self.created += len(fresh)


class _Rollback(Exception):
    pass


def _name_first_lines(errors: _Errors, repeats: dict[str, list[int]], source: BinaryIO, container: str, **parse) -> None:
    """A failed file only: read it once more to say which line first had each repeated id."""
    first: dict[str, int] = {}
    source.seek(0)
    for line, result in _parsed(source, container, **parse):
        if isinstance(result, ParsedItem) and result.external_id in repeats and result.external_id not in first:
            first[result.external_id] = line
            if len(first) == len(repeats):
                break
    where = {line: first[external_id] for external_id, lines in repeats.items() for line in lines if external_id in first}
    for error in errors.items:
        if error["field"] == "id" and error["line"] in where:
            error["message"] = f"repeats the id of line {where[error['line']]}"


def _fail(batch: ImportBatch, errors: list[dict]) -> None:
    batch.status = ImportBatch.Status.FAILED
    batch.errors = errors
    batch.finished_at = timezone.now()
    batch.lines_invalid = 0  # nothing was left out: nothing went in
    batch.save(update_fields=["status", "errors", "finished_at", "lines_read", "format", "lines_invalid"])


def import_stream(
    *,
    project: Project,
    stream: BinaryIO,
    filename: str = "",
    fmt: str | None = None,
    as_judgments: bool = False,
    skip_invalid: bool = False,
    created_by=None,
    batch: ImportBatch | None = None,
) -> ImportBatch:
    """Import every record of a binary stream (plain or gzip) into the project, or nothing.

    fmt: None (by file name, then by content), "jsonl", "csv" or "trl" (preference records only).
    Returns the finished ImportBatch; raises ImportFailed (batch row marked failed) on bad input.
    skip_invalid: import the good records and list the bad ones on the batch instead.
    """
    if batch is None:
        batch = ImportBatch.objects.create(
            project=project, filename=filename[:300], as_judgments=as_judgments, skip_invalid=skip_invalid, created_by=created_by,
            status=ImportBatch.Status.RUNNING, worker=runner_id(), attempts=1,
        )
    with importing(batch):
        return _import(project=project, stream=stream, filename=filename, fmt=fmt, as_judgments=as_judgments, skip_invalid=skip_invalid, batch=batch)


def _import(*, project: Project, stream: BinaryIO, filename: str, fmt: str | None, as_judgments: bool, skip_invalid: bool, batch: ImportBatch) -> ImportBatch:
    try:
        source = _seekable(stream)
        try:
            container = detect_format(source, filename, fmt)
        except LineError as exc:
            errors = [{"line": getattr(exc, "line", 0), "field": exc.field, "message": exc.message}]
            _fail(batch, errors)
            raise ImportFailed(errors, batch=batch) from None
        batch.format = fmt or container

        # One pass, one transaction: insert chunk by chunk while every line is checked; after
        # the first bad line keep checking (to report them all) but stop inserting, and roll back.
        errors = _Errors(limit=None if skip_invalid else MAX_ERRORS)
        repeats: dict[str, list[int]] = {}
        read = 0
        inserter = _Inserter(project=project, batch=batch, as_judgments=as_judgments)
        parsed = _parsed(source, container, project=project, as_judgments=as_judgments, trl_only=fmt == "trl")
        try:
            with transaction.atomic():
                for chunk in _chunks(parsed, settings.ARBITER_IMPORT_BATCH_SIZE):
                    good = []
                    for line, result in chunk:
                        read += 1
                        if isinstance(result, LineError):
                            errors.add(line, result.field, result.message, fatal=result.fatal)
                        else:
                            good.append((line, result))
                    # Good lines go in even after a bad one: the transaction rolls back anyway,
                    # and inserting is how ids repeated later in the file are still found.
                    for line, external_id in inserter.add(good):
                        errors.add(line, "id", "repeats an id of an earlier line")
                        if skip_invalid or len(repeats) < MAX_ERRORS:
                            repeats.setdefault(external_id, []).append(line)
                if errors.count and (errors.fatal or not skip_invalid):
                    raise _Rollback
                # With skip_invalid the bad lines were never inserted (a repeated id is not
                # inserted either), so what is in the transaction is exactly the good lines.
                if repeats:
                    _name_first_lines(errors, repeats, source, container, project=project, as_judgments=as_judgments, trl_only=fmt == "trl")
                batch.lines_read = read
                batch.items_created, batch.items_skipped, batch.judgments_created = inserter.created, inserter.skipped, inserter.judged
                batch.status = ImportBatch.Status.SUCCEEDED
                # Each left-out line as file:line:field with its reason, as the command prints it.
                batch.errors = [{"file": batch.filename, **e} for e in errors.report()]
                batch.lines_invalid = errors.count
                batch.finished_at = timezone.now()
                batch.save()
                if inserter.created:
                    priorities_refresh(project=project, reason=f"{inserter.created} items imported")  # uncertain order only
        except _Rollback:
            batch.lines_read = read
            if repeats:
                _name_first_lines(errors, repeats, source, container, project=project, as_judgments=as_judgments, trl_only=fmt == "trl")
            report = errors.report()
            _fail(batch, report)
            raise ImportFailed(report, errors.count, batch=batch) from None
        return batch
    except ImportFailed:
        raise
    except Exception as exc:
        _fail(batch, [{"line": 0, "field": "import", "message": f"{type(exc).__name__}: {exc}"}])
        raise


def import_path(*, project: Project, path: str | Path, fmt: str | None = None, as_judgments: bool = False, skip_invalid: bool = False,
                created_by=None, batch: ImportBatch | None = None) -> ImportBatch:
    path = Path(path)
    with path.open("rb") as stream:
        return import_stream(project=project, stream=stream, filename=path.name, fmt=fmt, as_judgments=as_judgments, skip_invalid=skip_invalid,
                             created_by=created_by, batch=batch)


def import_records(*, project: Project, records: list, as_judgments: bool = False, skip_invalid: bool = False, created_by=None) -> ImportBatch:
    """Import a list of records already in memory (an API JSON body); line = 1-based index."""
    buffer = io.BytesIO()
    for record in records:
        # A non-object still takes its line, so the report's numbers match the list's indexes.
        buffer.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
    buffer.seek(0)
    return import_stream(project=project, stream=buffer, filename="", fmt="jsonl", as_judgments=as_judgments, skip_invalid=skip_invalid,
                         created_by=created_by)


def import_upload(*, project: Project, upload, fmt: str | None = None, as_judgments: bool = False, skip_invalid: bool = False, created_by=None) -> ImportBatch:
    """Save an uploaded file under UPLOAD_DIR and queue its import (the worker runs
    import_batch_run once the batch row is committed)."""
    from annotation import tasks

    upload_dir = Path(settings.UPLOAD_DIR)
    upload_dir.mkdir(parents=True, exist_ok=True)
    name = Path(upload.name or "upload").name[:200]
    target = upload_dir / f"{uuid.uuid4().hex}-{name}"
    with target.open("wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    batch = ImportBatch.objects.create(
        project=project,
        filename=name,
        path=str(target),
        format=fmt or "",
        as_judgments=as_judgments,
        skip_invalid=skip_invalid,
        created_by=created_by,
        status=ImportBatch.Status.QUEUED,
    )
    transaction.on_commit(lambda: tasks.import_batch_run.delay(batch.id))
    return batch


def import_batch_run(*, batch_id: int) -> ImportBatch | None:
    """Run a queued upload. A repeated or late message finds the batch already claimed and does
    nothing (the conditional UPDATE is the claim), unless the process that claimed it died."""
    claimed = ImportBatch.objects.filter(id=batch_id, status=ImportBatch.Status.QUEUED).update(
        status=ImportBatch.Status.RUNNING, worker=runner_id(), attempts=F("attempts") + 1
    )
    # A message redelivered after its worker was killed finds the batch still "running":
    # it takes over when the importer is gone (liveness.py), and does nothing otherwise.
    if not claimed and not import_take_over(batch_id):
        return None
    batch = ImportBatch.objects.select_related("project").get(id=batch_id)
    path = Path(batch.path)
    try:
        if not path.is_file():
            _fail(batch, [{"line": 0, "field": "file", "message": "the uploaded file is gone; upload it again"}])
            return batch
        try:
            import_path(project=batch.project, path=path, fmt=batch.format or None, as_judgments=batch.as_judgments,
                        skip_invalid=batch.skip_invalid, batch=batch)
        except Exception:  # noqa: BLE001 - ImportFailed or not: recorded on the batch row by import_stream; a retry would fail the same way
            pass
    finally:
        path.unlink(missing_ok=True)
        ImportBatch.objects.filter(id=batch_id).update(path="")
    batch.refresh_from_db()
    return batch
