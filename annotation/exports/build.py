"""Building a snapshot: judgments -> every format (answers.py: attributes, labels), the card, the manifest; atomically.

The build streams: judgments are read with .iterator() ordered by item, one item's judgments are
combined at a time, and every row goes straight to its files. Memory depends on the largest item,
not on the number of judgments (bench/export_bench.py measures it).

Atomicity: everything is written into a hidden temporary folder next to the final one and moved
into place with one os.rename. A failure removes the temporary folder, so no half-written
snapshot is ever visible, and the row says `failed` with the error.
"""
from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import subprocess
import uuid
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

from django.conf import settings
from django.db import connection, transaction
from django.db.models import CharField, Q
from django.db.models.functions import Cast
from django.utils import timezone

from annotation import kinds

from annotation.quality import consensus
from annotation.exports.answers import AnswerRows
from annotation.exports.card import render_card
from annotation.exports.formats import SPLITS, SnapshotWriter, encode, export_completion, export_prompt
from annotation.exports.options import FORMATS, NONE, QUESTION_FORMATS, SnapshotOptions
from annotation.exports.reading import Memo, Pseudonyms, loads, raw_rows, raw_text
from annotation.exports.split import prompt_key, split_of
from annotation.models import Adjudication, Candidate, DatasetSnapshot, Demonstration, Item, Judgment, JudgmentRevision, Membership, Project

log = logging.getLogger(__name__)
PROGRESS_EVERY = 25_000
# A build's heartbeat older than this is a dead worker's (the heartbeat comes with each progress step).
STALE_SECONDS = 120


def snapshot_dir(snapshot: DatasetSnapshot) -> Path:
    """Where a snapshot's folder lives (or will live once ready)."""
    return Path(settings.ARTIFACT_ROOT) / "snapshots" / snapshot.project.slug / f"v{snapshot.version}"


@lru_cache(maxsize=1)
def code_version() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=5)
        if out.returncode == 0 and out.stdout.strip():
            return f"git:{out.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        from importlib.metadata import PackageNotFoundError, version

        return f"arbiter {version('arbiter')}"
    except PackageNotFoundError:
        return "arbiter 0.1.0"


def _failure_reason(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"the artifact disk is full ({settings.ARTIFACT_ROOT}: {exc.strerror}); nothing of this version was kept. "
            "Free some space (or raise the quota) and build again."
        )
    return f"{type(exc).__name__}: {exc}"


def snapshot_build(*, snapshot_id: int) -> DatasetSnapshot | None:
    """Build the snapshot's folder. A task that arrives twice or late finds the row ready (or
    failed) and does nothing; one that arrives while another delivery builds (its heartbeat is
    fresh) leaves the build to it, so the build runs once. A build whose worker died goes stale
    and is taken over by the next delivery or by snapshots_recover."""
    now = timezone.now()
    live = Q(status=DatasetSnapshot.Status.BUILDING, heartbeat_at__gte=now - timedelta(seconds=STALE_SECONDS))
    claimable = DatasetSnapshot.objects.filter(id=snapshot_id, status__in=[DatasetSnapshot.Status.QUEUED, DatasetSnapshot.Status.BUILDING])
    claimed = claimable.exclude(live).update(status=DatasetSnapshot.Status.BUILDING, progress=0.0, error="", heartbeat_at=now)
    if not claimed:
        return DatasetSnapshot.objects.filter(id=snapshot_id).first()
    snapshot = DatasetSnapshot.objects.select_related("project").get(id=snapshot_id)
    final = snapshot_dir(snapshot)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".v{snapshot.version}.building-{uuid.uuid4().hex[:8]}"
    try:
        manifest = _build_into(snapshot, tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            # Another delivery of the same task finished first: its folder stands, ours goes.
            shutil.rmtree(tmp, ignore_errors=True)
            snapshot.refresh_from_db()
            if snapshot.status == DatasetSnapshot.Status.READY:
                return snapshot
            raise
    except Exception as exc:
        log.exception("snapshot %s failed", snapshot_id)
        shutil.rmtree(tmp, ignore_errors=True)
        DatasetSnapshot.objects.filter(id=snapshot_id).exclude(status=DatasetSnapshot.Status.READY).update(
            status=DatasetSnapshot.Status.FAILED, error=_failure_reason(exc)[:4000], finished_at=timezone.now(), path=""
        )
        snapshot.refresh_from_db()
        return snapshot
    DatasetSnapshot.objects.filter(id=snapshot_id).update(
        status=DatasetSnapshot.Status.READY, progress=1.0, path=str(final), manifest=manifest, finished_at=timezone.now()
    )
    snapshot.refresh_from_db()
    return snapshot


def snapshots_recover() -> list[int]:
    """Builds whose worker died (a stale heartbeat): queue them again (every minute on the
    default worker, CELERY_BEAT_SCHEDULE). The build takes over the stale row."""
    from annotation.tasks import snapshot_build as build_task

    stale = timezone.now() - timedelta(seconds=STALE_SECONDS)
    ids = list(DatasetSnapshot.objects.filter(status=DatasetSnapshot.Status.BUILDING).filter(
        Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True)).values_list("id", flat=True))
    for snapshot_id in ids:
        transaction.on_commit(lambda snapshot_id=snapshot_id: build_task.delay(snapshot_id))
    return ids


def _judgments(projects: list[Project], opts: SnapshotOptions):
    qs = Judgment.objects.filter(project__in=[p.id for p in projects], source__in=opts.sources)
    if not opts.keep_gold:
        qs = qs.filter(item__is_gold=False)
    if opts.exclude_paused:
        paused = list(Membership.objects.filter(project__in=projects, paused=True).values_list("project_id", "user_id"))
        for project_id, user_id in paused:
            qs = qs.exclude(Q(project_id=project_id) & Q(rater_id=user_id))
    return qs


def _has_chat(projects: list[Project]) -> bool:
    fn = "jsonb_typeof" if connection.vendor == "postgresql" else "json_type"
    table = Item._meta.db_table
    return Item.objects.filter(project__in=projects).extra(where=[f"{fn}({table}.prompt) = 'array'"]).exists()


def _keep(value: dict, opts: SnapshotOptions) -> bool:
    winner = value.get("winner")
    if winner == kinds.TIE and not opts.keep_ties:
        return False
    if winner == kinds.BOTH_BAD and not opts.keep_both_bad:
        return False
    return True


def _candidates(projects: list[Project]) -> Iterator[tuple[int, dict[int, tuple[str, str]]]]:
    """(item_id, {position: (text, model)}) for every item, in item order (a merge join partner)."""
    rows = raw_rows(
        Candidate.objects.filter(item__project__in=projects).order_by("item_id", "position").values_list("item_id", "position", "text", "model_name"), 4
    )
    current, group = None, {}
    for item_id, position, text, model in rows:
        if item_id != current:
            if current is not None:
                yield current, group
            current, group = item_id, {}
        group[position] = (text, model)
    if current is not None:
        yield current, group


def _worker_key(rater_id, source, ai_model) -> str:
    return f"ai:{ai_model}" if source == Judgment.Source.AI else f"u:{rater_id}"


def _build_into(snapshot: DatasetSnapshot, root: Path) -> dict:
    opts = SnapshotOptions.from_dict(snapshot.options)
    projects = [snapshot.project, *snapshot.extra_projects.order_by("id")]
    by_id = {p.id: p for p in projects}
    root.mkdir(parents=True)
    qs = _judgments(projects, opts)
    total = qs.count()
    chat = _has_chat(projects)
    with_margin = any(p.kind != kinds.Kind.BINARY for p in projects)

    winners: dict[int, tuple[Any, float]] = {}
    if opts.aggregation == consensus.DAWID_SKENE:
        decode = Memo().decode
        rows = raw_rows(qs.filter(kind__in=[kinds.Kind.BINARY, kinds.Kind.LIKERT]).values_list("item_id", "rater_id", "source", "ai_model", "value"), 5)
        winners = consensus.dawid_skene_winners(
            (item_id, _worker_key(r, s, m), v["winner"]) for item_id, r, s, m, raw in rows if _keep(v := decode[raw_text(raw)], opts)
        )

    # attributes/ and labels/ only where a project asks such questions (exports/answers.py).
    answer_rows = AnswerRows(projects)
    formats = tuple(f for f in FORMATS if f not in QUESTION_FORMATS or f in answer_rows.formats)
    writer = SnapshotWriter(root, chat=chat, with_margin=with_margin, formats=formats, attribute_keys=answer_rows.keys)
    stats = _Stats()
    pseudonym = Pseudonyms()
    fields = ("item_id", "project_id", "rater_id", "kind", "source", "ai_model", "value", "display_order", "duration_ms", "rationale", "created_at", "item__prompt", "item__external_id", "item__metadata", "id", "version", "answers")
    memo = Memo()
    ordered = qs.order_by("item_id", "id")
    if connection.vendor == "sqlite":
        # SQLite's driver would parse every timestamp into a datetime only for us to format it
        # back; the stored text is already UTC ("YYYY-MM-DD HH:MM:SS.ffffff"), _write_item finishes it.
        ordered = ordered.annotate(created_text=Cast("created_at", output_field=CharField()))
        fields = tuple("created_text" if f == "created_at" else f for f in fields)
    rows = raw_rows(ordered.values_list(*fields), len(fields))
    candidates = _candidates(projects)
    cand_item, cand_group = -1, {}
    done = 0
    context = _Context(writer, memo, pseudonym, stats, opts, by_id, chat, with_margin)
    context.answer_rows = answer_rows if answer_rows.formats else None
    context.revisions = _revisions(qs)
    stats.changed = len(context.revisions)
    if opts.use_adjudicated:
        context.adjudicated = dict(Adjudication.objects.filter(project__in=projects).values_list("item_id", "value"))
    try:
        for raw_group in _grouped(rows):
            item_id = raw_group[0][0]
            while cand_item is not None and cand_item < item_id:
                cand_item, cand_group = next(candidates, (None, {}))
            _write_item(context, raw_group, cand_group if cand_item == item_id else {}, winners.get(item_id))
            done += len(raw_group)
            if done // PROGRESS_EVERY != (done - len(raw_group)) // PROGRESS_EVERY:
                DatasetSnapshot.objects.filter(id=snapshot.id).update(progress=round(0.95 * done / max(total, 1), 4), heartbeat_at=timezone.now())
        if opts.keep_demonstrations:
            _write_demonstrations(context, projects)
        _write_prompts(writer, projects, opts, chat)
    finally:
        writer.close()
    stats.raters = len(pseudonym.names)

    counts = writer.counts()
    card = render_card(snapshot=snapshot, projects=projects, options=opts, counts=counts, stats=stats.as_dict(), chat=chat, with_margin=with_margin)
    (root / "README.md").write_text(card, encoding="utf-8")
    files = {}
    known = writer.digests()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        name = path.relative_to(root).as_posix()
        files[name] = {"sha256": known.get(name) or _sha256(path), "bytes": path.stat().st_size}
    manifest = {
        "name": f"{snapshot.project.slug}-v{snapshot.version}",
        "project": snapshot.project.slug,
        "projects": [p.slug for p in projects],
        "version": snapshot.version,
        "options": opts.as_dict(),
        "counts": counts,
        "judgments": stats.as_dict(),
        "conversational": chat,
        "files": files,
        "code_version": code_version(),
        "created_by": snapshot.created_by.username if snapshot.created_by_id else None,
        "created_at": snapshot.created_at.isoformat(),
        "built_at": timezone.now().isoformat(),
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    return manifest


def _grouped(rows) -> Iterator[list[tuple]]:
    current, group = None, []
    for row in rows:
        if row[0] != current:
            if group:
                yield group
            current, group = row[0], []
        group.append(row)
    if group:
        yield group


class _Stats:
    def __init__(self):
        self.kind_source: dict[tuple[str, str], int] = {}
        self.items = 0
        self.items_multi = 0
        self.agreement_sum = 0.0
        self.split_evenly = 0
        self.below_min_agreement = 0
        self.raters = 0
        self.adjudicated = 0
        self.changed = 0
        self.demonstrations = {"written": 0, "rewrite": 0}
        # Preference rows by where their answer came from: "human", "ai", "import", or a mix
        # ("ai+human") when an item's consensus combined sources.
        self.rows_by_source: dict[str, int] = {}

    def as_dict(self) -> dict:
        per_kind: dict[str, int] = {}
        per_source: dict[str, int] = {}
        for (kind, source), n in self.kind_source.items():
            per_kind[kind] = per_kind.get(kind, 0) + n
            per_source[source] = per_source.get(source, 0) + n
        return {
            "total": sum(self.kind_source.values()),
            "per_kind": per_kind,
            "per_source": per_source,
            "raters": self.raters,
            "items": self.items,
            "items_with_several_judgments": self.items_multi,
            "mean_agreement_with_consensus": round(self.agreement_sum / self.items_multi, 4) if self.items_multi else None,
            "items_split_evenly": self.split_evenly,
            "items_below_min_agreement": self.below_min_agreement,
            "items_adjudicated": self.adjudicated,
            "judgments_changed": self.changed,
            "demonstrations": dict(self.demonstrations),
            "preference_rows_by_source": dict(sorted(self.rows_by_source.items())),
        }


class _Context:
    """What every item's rows need, gathered once per build."""

    def __init__(self, writer, memo, pseudonym, stats, opts, by_id, chat, with_margin):
        self.writer, self.memo, self.pseudonym, self.stats, self.opts = writer, memo, pseudonym, stats, opts
        self.by_id, self.chat, self.with_margin = by_id, chat, with_margin
        self.drop = {w for w, keep in ((kinds.TIE, opts.keep_ties), (kinds.BOTH_BAD, opts.keep_both_bad)) if not keep}
        self.tz_suffix = "+00:00" if settings.USE_TZ else ""
        self.revisions: dict[int, list] = {}
        self.adjudicated: dict[int, dict] = {}
        self.answer_rows: AnswerRows | None = None


def _write_item(ctx: _Context, rows: list[tuple], cands: dict, ds_winner) -> None:
    """All rows of one item, from its judgments as the database returned them. Every piece shared
    by several rows (the prompt, each candidate) is JSON-encoded once, and the JSONL lines are
    assembled from the pieces."""
    memo, opts, chat, writer, stats = ctx.memo, ctx.opts, ctx.chat, ctx.writer, ctx.stats
    item_id = rows[0][0]
    decode, text, canonical, as_json, pseudonym, drop = memo.decode, memo.text, memo.canonical, memo.json, ctx.pseudonym, ctx.drop
    (_, project_id, _, kind, _, _, _, _, _, _, _, prompt_raw, external_id, metadata_raw, _, _, _) = rows[0]
    project = ctx.by_id[project_id]
    shared = None
    split = None
    values = []
    origins = []
    answers = []
    answer_rows = ctx.answer_rows
    counts = stats.kind_source
    for (_, _, rater_id, j_kind, source, ai_model, value_raw, order_raw, duration, rationale, created_at, _, _, _, judgment_id, version, answers_raw) in rows:
        value_raw = raw_text(value_raw)
        value = decode[value_raw]
        if drop and value.get("winner") in drop:
            continue
        if shared is None:
            prompt = loads(prompt_raw)
            split = split_of(prompt, seed=opts.seed, test_share=opts.test_share, metadata=loads(metadata_raw))
            p = export_prompt(prompt, chat)
            p_json = encode(p)
            candidates = [{"position": pos, "text": t, "model": model} for pos, (t, model) in sorted(cands.items())]
            shared = (encode(external_id), text[project.slug], p_json, encode(candidates))
        key = (j_kind, source)
        counts[key] = counts.get(key, 0) + 1
        values.append(value)
        origins.append(source)
        answers_raw = raw_text(answers_raw)
        if answer_rows is not None:
            answers.append(loads(answers_raw))
        if created_at.__class__ is str:  # SQLite: "YYYY-MM-DD HH:MM:SS.ffffff", UTC
            created = f'"{created_at.replace(" ", "T")}{ctx.tz_suffix}"'
        else:
            created = "null" if created_at is None else f'"{created_at.isoformat()}"'
        who, order_json = pseudonym(rater_id, source, ai_model), as_json[raw_text(order_raw)]
        writer.judgment(
            split,
            (*shared, text[j_kind], canonical[value_raw], canonical[answers_raw], who, text[source], text[ai_model],
             order_json, "null" if duration is None else str(int(duration)),
             text[rationale] if not rationale else encode(rationale), created, str(version or 1), "true"),
        )
        # Earlier versions of a changed answer: in the raw export only, beside the latest.
        for old in ctx.revisions.get(judgment_id, ()):
            writer.judgment(
                split,
                (*shared, text[j_kind], encode(json.dumps(old.value, sort_keys=True)), encode(json.dumps(old.answers, sort_keys=True)), who, text[source], text[ai_model],
                 order_json, "null" if old.duration_ms is None else str(int(old.duration_ms)), encode(old.rationale),
                 encode(old.given_at.isoformat()), str(old.version), "false"),
            )
    if not values:
        return
    stats.items += 1
    if answer_rows is not None:
        answer_rows.write_item(writer, split, project_id=project_id, prompt_json=p_json, item_id_json=shared[0], cands=cands, answers=answers)

    completions: dict[int, str] = {}

    def completion(position: int) -> str | None:
        """The JSON text of a candidate as a completion, encoded once per item."""
        if position not in completions:
            found = cands.get(position)
            if found is None:
                return None
            completions[position] = encode(export_completion(found[0], chat))
        return completions[position]

    forced = ds_winner[0] if ds_winner else None
    agreed = consensus.item_consensus(kind, values, rating_threshold=project.rating_threshold, forced_winner=forced)
    with_margin = ctx.with_margin
    if len(values) > 1:
        stats.items_multi += 1
        stats.agreement_sum += agreed.agreement if agreed else 0.5
    adjudicated = ctx.adjudicated.get(item_id)
    if adjudicated is not None:
        # The manager's final answer stands for the item: one set of rows, whatever the raters said.
        stats.adjudicated += 1
        agreed, values = consensus.Consensus(adjudicated, 1.0, len(values)), [adjudicated]
    if agreed is None:
        stats.split_evenly += 1
        if opts.aggregation != NONE or opts.min_agreement > 0:
            return
    elif agreed.agreement < opts.min_agreement:
        stats.below_min_agreement += 1
        return

    if adjudicated is not None:
        sources = [(agreed.value, "adjudicated")]
    elif opts.aggregation == NONE:
        sources = list(zip(values, origins))
    else:
        sources = [(agreed.value, "+".join(sorted(set(origins))))]
    by_source = stats.rows_by_source
    for value, origin in sources:
        for pair in kinds.comparisons(kind, value):
            chosen, rejected = completion(pair.chosen), completion(pair.rejected)
            if chosen is None or rejected is None:
                continue
            writer.preference(split, p_json, chosen, rejected, pair.strength if with_margin else None)
            by_source[origin] = by_source.get(origin, 0) + 1
        for position, label in kinds.unpaired_labels(kind, value, rating_threshold=project.rating_threshold):
            found = completion(position)
            if found is not None:
                writer.unpaired(split, p_json, found, label)

    # SFT: only the best response, and only where the raters agree on it.
    if agreed is not None and agreed.agreement >= opts.sft_min_agreement:
        best = kinds.best_positions(kind, agreed.value)
        found = completion(best[0]) if len(best) == 1 else None
        if found is not None:
            writer.sft(split, p_json, found)


def _revisions(qs) -> dict[int, list]:
    """judgment id -> its earlier versions (JudgmentRevision), for the judgments a snapshot holds.
    Changed answers are few: they are read once, up front."""
    found: dict[int, list] = {}
    for revision in JudgmentRevision.objects.filter(judgment__in=qs.filter(version__gt=1).values("id")).order_by("judgment_id", "-version"):
        found.setdefault(revision.judgment_id, []).append(revision)
    return found


def _write_demonstrations(ctx: _Context, projects: list[Project]) -> None:
    """Demonstrations raters wrote: an sft row each (source `written` or `rewrite`), and for a
    rewrite a preference pair, the rewrite chosen over the response it was made from. They take
    their item's side of the split, so they never leak across it."""
    opts, writer, stats = ctx.opts, ctx.writer, ctx.stats
    qs = Demonstration.objects.filter(project__in=projects).select_related("item").order_by("item_id", "id")
    if not opts.keep_gold:
        qs = qs.filter(item__is_gold=False)
    if opts.exclude_paused:
        for project_id, user_id in Membership.objects.filter(project__in=projects, paused=True).values_list("project_id", "user_id"):
            qs = qs.exclude(Q(project_id=project_id) & Q(rater_id=user_id))
    for demo in qs.iterator(chunk_size=2000):
        item = demo.item
        split = split_of(item.prompt, seed=opts.seed, test_share=opts.test_share, metadata=item.metadata)
        prompt_json = encode(export_prompt(item.prompt, ctx.chat))
        completion = encode(export_completion(demo.text, ctx.chat))
        source = "rewrite" if demo.is_rewrite else "written"
        writer.sft(split, prompt_json, completion, source)
        stats.demonstrations[source] += 1
        if demo.is_rewrite and demo.source_text.strip() and demo.source_text != demo.text:
            original = encode(export_completion(demo.source_text, ctx.chat))
            writer.preference(split, prompt_json, completion, original, 1.0 if ctx.with_margin else None)


def _write_prompts(writer: SnapshotWriter, projects: list[Project], opts: SnapshotOptions, chat: bool) -> None:
    """The `prompts` format: every item's prompt once (judged or not, so a prompt set of items
    without candidates is a training set for online RL), on the side of the split its text hashes to."""
    items = Item.objects.filter(project__in=projects)
    if not opts.keep_gold:
        items = items.filter(is_gold=False)
    seen: set[bytes] = set()
    for raw, raw_metadata in raw_rows(items.order_by("id").values_list("prompt", "metadata"), 2):
        prompt = loads(raw)
        key = hashlib.blake2b(prompt_key(prompt).encode(), digest_size=16).digest()
        if key in seen:
            continue
        seen.add(key)
        # The same side as the item's pairs: split_of keeps a conversation group on one side.
        metadata = loads(raw_metadata) if raw_metadata else None
        writer.prompt(split_of(prompt, seed=opts.seed, test_share=opts.test_share, metadata=metadata), encode(export_prompt(prompt, chat)))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


__all__ = ["snapshot_build", "snapshot_dir", "code_version", "SPLITS"]
