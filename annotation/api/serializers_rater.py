"""Shapes of the rater API: what a rater is shown, and what they send back.

What a rater sees is deliberately narrow: the prompt and the candidates in on-screen order,
never the gold answer, whether an item is gold, the models that wrote the candidates
(position bias is bad enough without brand bias) or anyone else's judgments.

The rater's two hot calls (next, submit) build their responses with the plain functions
`lease_payload` and `judgment_payload` and check their input with annotation.submission:
instantiating a DRF serializer deep-copies its fields on every request, which cost more CPU
than the rest of the response. The serializer classes below still describe those shapes in
the OpenAPI schema; tests/annotation/test_api_rater.py checks the two never drift apart.
"""
from __future__ import annotations

from rest_framework import serializers

from annotation import submission
from annotation.assignment import assignment_candidates
from annotation.kinds import Kind
from annotation.labelling import screen_label
from annotation.models import Assignment, Judgment, Project


def kind_settings(project: Project) -> dict:
    """The settings of the project's kind that a client needs to draw the answer controls."""
    if project.kind == Kind.BINARY:
        return {"allow_tie": project.allow_tie, "allow_both_bad": project.allow_both_bad}
    if project.kind == Kind.LIKERT:
        return {"likert_points": project.likert_points, "likert_labels": project.likert_labels}
    if project.kind == Kind.RANKING:
        return {"ranking_k": project.ranking_k, "ranking_min_k": project.ranking_min_k, "ranking_allow_ties": project.ranking_allow_ties}
    if project.kind == Kind.RATING:
        return {
            "rating_min": project.rating_min,
            "rating_max": project.rating_max,
            "rating_threshold": project.rating_threshold,
            "rating_labels": project.rating_labels,
        }
    return {}


def lease_payload(assignment: Assignment, project: Project) -> dict:
    """What LeaseSerializer describes: the lease, its item and candidates in on-screen order."""
    item = assignment.item
    return {
        "assignment": assignment.id,
        "expires_at": assignment.expires_at,
        "item": {"id": item.id, "prompt": item.prompt, "is_chat": item.is_chat},
        "candidates": [
            {"label": screen_label(i), "position": c.position, "text": c.text}
            for i, c in enumerate(assignment_candidates(assignment))
        ],
        "project": {
            "slug": project.slug,
            "name": project.name,
            "kind": project.kind,
            "instructions": project.instructions,
            "settings": kind_settings(project),
            # The other questions to answer beside `value` (annotation.questions), as declared.
            "questions": project.questions or [],
        },
    }


_JUDGMENT_FIELDS = (
    ("id", "id"),
    ("assignment", "assignment_id"),
    ("item", "item_id"),
    ("kind", "kind"),
    ("source", "source"),
    ("value", "value"),
    ("answers", "answers"),
    ("display_order", "display_order"),
    ("duration_ms", "duration_ms"),
    ("rationale", "rationale"),
    ("flags", "flags"),
    ("client_key", "client_key"),
    ("created_at", "created_at"),
)


def judgment_payload(judgment: Judgment) -> dict:
    """What JudgmentSerializer describes: the caller's own judgment."""
    return {name: getattr(judgment, attr) for name, attr in _JUDGMENT_FIELDS}


class LeaseProjectSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=Kind.choices)
    instructions = serializers.CharField(help_text="Markdown; render it safely (untrusted).")
    settings = serializers.DictField(help_text="The settings of this kind: allow_tie, likert_points, ranking_k, rating_min ...")
    questions = serializers.ListField(
        child=serializers.DictField(), help_text="Questions to answer beside `value` (submit them as `answers`): key, label, type, per, required ..."
    )


class LeaseItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    prompt = serializers.JSONField(help_text='A string, or chat messages [{"role": ..., "content": ...}].')
    is_chat = serializers.BooleanField()


class LeaseCandidateSerializer(serializers.Serializer):
    label = serializers.CharField(help_text="The on-screen name: A, B, C ... in display order.")
    position = serializers.IntegerField(help_text="The canonical position: answers name candidates by it.")
    text = serializers.CharField(help_text="Model output, markdown; untrusted: render it safely.")


class LeaseSerializer(serializers.Serializer):
    """POST /api/projects/<slug>/next/ (schema only: lease_payload builds it): the rater's lease,
    candidates in on-screen order."""

    assignment = serializers.IntegerField()
    expires_at = serializers.DateTimeField()
    item = LeaseItemSerializer()
    candidates = LeaseCandidateSerializer(many=True)
    project = LeaseProjectSerializer()


class SubmitSerializer(serializers.Serializer):
    """POST /api/assignments/<id>/submit/ (schema only: annotation.submission checks it). Positions
    in `value` are canonical (the `position` of each candidate), never on-screen sides."""

    value = serializers.JSONField(
        help_text='binary {"winner": 0|1|"tie"|"both_bad"}; likert {"winner": 0|1|"tie", "strength": k}; '
        'ranking {"ranking": [[p, ...], ...]} best first; rating {"scores": [s0, s1, ...]}'
    )
    answers = serializers.JSONField(
        required=False, default=dict,
        help_text='The project\'s other questions (GET /api/projects/<slug>/ "questions"), by key, candidates by position: '
        'scale per response [s0, s1, ...]; scale per item s; labels per item ["a", ...]; labels per response [["a"], []]; text "...".',
    )
    duration_ms = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=submission.MAX_DURATION_MS)
    rationale = serializers.CharField(required=False, allow_blank=True, max_length=submission.MAX_RATIONALE, default="")
    flags = serializers.ListField(
        child=serializers.CharField(max_length=submission.MAX_FLAG_CHARS), required=False, max_length=submission.MAX_FLAGS, default=list,
        help_text='Free tags the rater attaches, e.g. ["unsafe", "needs_expert"].',
    )
    client_key = serializers.CharField(
        required=False, allow_blank=True, max_length=submission.MAX_CLIENT_KEY, default="",
        help_text="Any unique string per answer (a UUID): a retry with the same key stores nothing new.",
    )


class JudgmentSerializer(serializers.Serializer):
    # Declared fields rather than a ModelSerializer: building fields from the model on every
    # submit cost more CPU than the rest of the response.
    id = serializers.IntegerField(read_only=True)
    assignment = serializers.IntegerField(source="assignment_id", allow_null=True, read_only=True)
    item = serializers.IntegerField(source="item_id", read_only=True)
    kind = serializers.CharField(read_only=True)
    source = serializers.CharField(read_only=True, help_text="human, ai or import")
    value = serializers.JSONField(read_only=True, help_text="Canonical: candidates by position (annotation.kinds).")
    answers = serializers.JSONField(read_only=True, help_text="Answers to the project's other questions (annotation.questions).")
    display_order = serializers.JSONField(read_only=True, help_text="Candidate positions in on-screen order.")
    duration_ms = serializers.IntegerField(allow_null=True, read_only=True)
    rationale = serializers.CharField(read_only=True)
    flags = serializers.JSONField(read_only=True)
    client_key = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)


class ProjectJudgmentSerializer(JudgmentSerializer):
    """For researchers and managers: who judged (user id) and whether a gold answer matched."""

    rater = serializers.IntegerField(source="rater_id", allow_null=True, read_only=True)
    ai_model = serializers.CharField(read_only=True)
    gold_correct = serializers.BooleanField(allow_null=True, read_only=True)


class ProgressSerializer(serializers.Serializer):
    done_today = serializers.IntegerField()
    done_total = serializers.IntegerField()
    remaining = serializers.IntegerField(help_text="Items this rater could still label (an upper bound).")


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField(required=False)
