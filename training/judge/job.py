"""The judge job on a gpu worker, top to bottom: claim the row, load the judge, answer every
item of the project that this judge and template have not answered yet, store the answers as
judgments with source `ai`, and finish.

Why its own row (JudgeJob) and not a TrainingRun: a run trains from a snapshot into a new model
with checkpoints on disk; a judge reads the live project and writes judgments. Its checkpoint is
the judgments themselves: they are unique per (item, judge model, template), so a job that was
cancelled, or whose worker died, resumes by skipping the items already answered, and a message
delivered twice cannot store an answer twice. Like a run, the row is the truth: the claim is a
conditional UPDATE, the attempt number is a fencing token on every later write, the heartbeat is
written with each batch, and cancel is a flag read between batches.

AI judgments never touch Item.taken or Item.judgment_count, which is what the claim of the next
item reads: they never use up a human rater's overlap, and they have no rater, so no rater sees
them as their own.
"""
from __future__ import annotations

import logging
import time
import traceback

from django.db import close_old_connections, connection
from django.db.models import F
from django.utils import timezone

from annotation import kinds
from annotation.models import Candidate, Item, Judgment
from training.runs import lifecycle
from training.judge import answers, prompts
from training.judge.judging import judge_item
from training.judge.judges import JudgeError, judge_load
from training.judge.models import JudgeJob

log = logging.getLogger(__name__)
Status = JudgeJob.Status
BATCH = 8


JobLost = lifecycle.Lost


def judge_claim(*, job_id: int, worker_name: str) -> int | None:
    """Take the job (training/runs/lifecycle.py): the attempt number, the fencing token, or None."""
    return lifecycle.claim(JudgeJob, pk=job_id, worker_name=worker_name)


def target_items(job: JudgeJob):
    """The items this job answers: the project's items (the first `limit` by id), whatever their kind of use."""
    items = Item.objects.filter(project_id=job.project_id).order_by("id")
    limit = (job.config or {}).get("limit")
    if limit:
        last = items.values_list("id", flat=True)[limit - 1 : limit].first()
        if last is not None:
            items = items.filter(id__lte=last)
    return items


def answered_ids(job: JudgeJob) -> set[int]:
    return set(
        Judgment.objects.filter(project_id=job.project_id, source=Judgment.Source.AI, ai_model=job.model.name, ai_template=job.template_key).values_list("item_id", flat=True)
    )


def _store(job: JudgeJob, rows: list[Judgment]) -> int:
    """Insert the batch; an answer already there (a second delivery) is left as it is."""
    before = Judgment.objects.filter(project_id=job.project_id, item_id__in=[r.item_id for r in rows], source=Judgment.Source.AI, ai_model=job.model.name, ai_template=job.template_key).count()
    Judgment.objects.bulk_create(rows, ignore_conflicts=True)
    after = Judgment.objects.filter(project_id=job.project_id, item_id__in=[r.item_id for r in rows], source=Judgment.Source.AI, ai_model=job.model.name, ai_template=job.template_key).count()
    return after - before


def judge_execute(*, job_id: int, worker_name: str, judge=None) -> str:
    """Run (or resume) a judge job. `judge` lets a caller pass a loaded judge (bench/rlaif.py)."""
    if not connection.in_atomic_block:
        close_old_connections()  # a long-lived worker may hold a connection the server has dropped
    attempt = judge_claim(job_id=job_id, worker_name=worker_name)
    if attempt is None:
        return "nothing to do"
    job = JudgeJob.objects.select_related("project", "model").get(pk=job_id)
    project = job.project
    mine = lifecycle.held(JudgeJob, pk=job_id, attempt=attempt, worker=worker_name)
    try:
        judge = judge or judge_load(job.model, max_length=int((job.config or {}).get("max_length") or 2048))
        template = prompts.template_for(project, job.template_name if job.template_name in prompts.TEMPLATES else "default")
        if not judge.is_reward_model and template.key != job.template_key:
            raise JudgeError("template: the project's instructions or principles changed since this job was queued; start a new job")
        tie_band = float((job.config or {}).get("tie_band", answers.DEFAULT_TIE_BAND))
        ids = list(target_items(job).values_list("id", flat=True))
        done_ids = answered_ids(job)
        pending = [i for i in ids if i not in done_ids]
        tally = answers.BiasTally.from_dict(job.result)
        # Undecided items are not stored, so a resumed job asks about them again: count afresh.
        undecided = 0
        if not mine.update(total=len(ids), done=len(ids) - len(pending), phase="judging", heartbeat_at=timezone.now()):
            raise JobLost()
        for start in range(0, len(pending), BATCH):
            state = JudgeJob.objects.filter(pk=job_id).values("cancel_requested", "attempts").first()
            if state is None or state["attempts"] != attempt:
                raise JobLost()
            if state["cancel_requested"]:
                mine.update(status=Status.CANCELLED, finished_at=timezone.now(), result=tally.as_dict(), undecided=undecided)
                return "cancelled"
            batch = pending[start : start + BATCH]
            rows = []
            items = Item.objects.in_bulk(batch)
            texts: dict[int, list[str]] = {}
            for c in Candidate.objects.filter(item_id__in=batch).order_by("item_id", "position").values_list("item_id", "text"):
                texts.setdefault(c[0], []).append(c[1])
            for item_id in batch:
                item, cand = items[item_id], texts.get(item_id, [])
                needed = project.candidates_per_item
                if not cand or (len(cand) < 2 and project.kind != kinds.Kind.RATING) or (needed and len(cand) != needed):
                    undecided += 1
                    continue
                began = time.monotonic()
                value, why = judge_item(judge=judge, template=template, project=project, prompt=item.prompt, texts=cand, tally=tally, tie_band=tie_band)
                if value is None:
                    undecided += 1
                    continue
                value = kinds.validate_value(project, value, len(cand))
                gold_correct = kinds.gold_matches(project.kind, item.gold, value, rating_threshold=project.rating_threshold) if item.is_gold and item.gold else None
                rows.append(
                    Judgment(
                        project_id=project.pk, item_id=item_id, rater=None, kind=project.kind, source=Judgment.Source.AI, value=value,
                        display_order=[], duration_ms=int((time.monotonic() - began) * 1000), gold_correct=gold_correct,
                        rationale=f"AI judge {job.model.name} ({job.template_key}), both on-screen orders: {why}",
                        ai_model=job.model.name, ai_template=job.template_key,
                    )
                )
            stored = _store(job, rows) if rows else 0
            if not mine.update(
                done=F("done") + len(batch), stored=F("stored") + stored, undecided=undecided, result=tally.as_dict(), heartbeat_at=timezone.now()
            ):
                raise JobLost()
        mine.update(status=Status.SUCCEEDED, finished_at=timezone.now(), result=tally.as_dict(), undecided=undecided)
        return "succeeded"
    except JobLost:
        log.warning("judge job %s: another worker owns it now; stopping", job_id)
        return "lost"
    except Exception as exc:
        log.exception("judge job %s failed", job_id)
        message = str(exc) if isinstance(exc, (JudgeError, kinds.InvalidValue)) else f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}"
        mine.update(status=Status.FAILED, error=message[:5000], finished_at=timezone.now())
        return "failed"
