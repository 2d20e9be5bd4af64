"""Quality of a project's questions, read from the database (the numbers: question_agreement).

One query over the human judgments quality is about (figures.human_judgments: the project's
kind, by a known rater), answers decoded in one json.loads call, and one over the gold items
whose gold dict carries "answers". Cached like the other quality figures, under its own name.
Permissions are the caller's: the quality page and API let researchers and managers in only,
so a rater never sees another rater's figures.
"""
from __future__ import annotations

from datetime import datetime
from datetime import timezone as dt_timezone

from django.contrib.auth import get_user_model
from django.db.models import TextField
from django.db.models.functions import Cast

from annotation.models import Item, Project
from annotation.questions import LABELS, SCALE, declared
from annotation.quality import agreement
from annotation.quality.figures import human_judgments, quality_cached
from annotation.quality.question_agreement import GOLD_TOLERANCE, INTERVALS, questions_figures


def measured_questions(project: Project) -> list[dict]:
    """The questions that get agreement figures (scales and labels; text has none)."""
    return [q for q in declared(project) if q["type"] in (SCALE, LABELS)]


def _gold_answers(project: Project) -> dict[int, dict]:
    rows = Item.objects.filter(project=project, is_gold=True, gold__has_key="answers").values_list("id", "gold")
    return {item_id: gold["answers"] for item_id, gold in rows if isinstance(gold, dict) and isinstance(gold.get("answers"), dict)}


def project_question_quality_compute(*, project: Project, seed: int = 0) -> dict:
    """Every question figure of a project, uncached. Prefer project_question_quality (cached)."""
    result = {
        "project": project.slug,
        "computed_at": datetime.now(tz=dt_timezone.utc).isoformat(),
        "intervals": INTERVALS,
        "gold_tolerance": GOLD_TOLERANCE,
        "questions": [],
    }
    if not measured_questions(project):
        return result
    with agreement.gc_paused():
        raw = list(human_judgments(project).annotate(a=Cast("answers", TextField())).values_list("item_id", "rater_id", "a"))
    decoded = agreement.decode_json_rows([a or "{}" for _, _, a in raw])
    rows = [(item_id, rater_id, answers) for (item_id, rater_id, _), answers in zip(raw, decoded) if answers]
    rater_ids, questions = questions_figures(project, rows, _gold_answers(project), seed=seed)
    users = get_user_model().objects.in_bulk([int(r) for r in rater_ids])
    names = [users[int(r)].get_username() if int(r) in users else f"#{int(r)}" for r in rater_ids]
    for q in questions:
        table = [{"rater_id": int(rater_ids[i]), "username": names[i], **row} for i, row in enumerate(q.pop("per_rater")) if row["answers"]]
        table.sort(key=lambda row: (-row["answers"], row["username"]))
        q["rater_table"] = table
    result["questions"] = questions
    return result


def project_question_quality(*, project: Project) -> dict:
    """Question figures, cached until the project's judgments, raters or questions change."""
    return quality_cached(project=project, name="questions", compute=lambda: project_question_quality_compute(project=project))
