"""API shapes of models and runs. Read-only views of rows; writes go through services."""
from __future__ import annotations

from rest_framework import serializers

from training.core.heads import MAX_WEIGHT, WeightsError, weights_parse
from training.registry import scoring
from training.registry.models import ModelArtifact
from training.runs.models import TrainingRun
from training.recipes import catalog
from training.runs.results import accuracy_figures
from training.registry.selectors import model_project

ACCURACY_HELP = "Each accuracy in the results with its n and 95% Wilson interval: {name: {value, k, n, ci95: [low, high], method}}."


class ModelArtifactSerializer(serializers.ModelSerializer):
    base_model_name = serializers.CharField(source="base_model.name", default=None, read_only=True, allow_null=True)
    project = serializers.SerializerMethodField(help_text="Slug of the project a trained model belongs to; null for base models.")

    class Meta:
        model = ModelArtifact
        fields = ["id", "name", "kind", "source", "is_adapter", "base_model", "base_model_name", "run", "snapshot", "project",
                  "config", "metrics", "accuracies", "created_at"]
        read_only_fields = fields

    accuracies = serializers.SerializerMethodField(help_text=ACCURACY_HELP)

    def get_accuracies(self, artifact) -> dict:
        return accuracy_figures(artifact.metrics or {})

    def get_project(self, artifact) -> str | None:
        project = model_project(artifact)
        return project.slug if project else None


class TrainingRunSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    snapshot_version = serializers.IntegerField(source="snapshot.version", read_only=True)
    base_model_name = serializers.CharField(source="base_model.name", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    percent = serializers.SerializerMethodField()
    output_model = serializers.SerializerMethodField(help_text="Id of the registered model once the run succeeded.")
    accuracies = serializers.SerializerMethodField(help_text="Of the test-split results. " + ACCURACY_HELP)

    class Meta:
        model = TrainingRun
        fields = ["id", "project", "snapshot", "snapshot_version", "base_model", "base_model_name", "reward_model", "method", "use_lora",
                  "config", "num_processes", "distributed", "evaluate_after", "accuracies", "status", "cancel_requested", "worker", "device", "attempts", "step",
                  "total_steps", "percent", "heartbeat_at",
                  "log_tail", "result", "error", "output_model", "created_by", "created_at", "started_at", "finished_at"]
        read_only_fields = fields

    def to_representation(self, run):
        data = super().to_representation(run)
        request = self.context.get("request")
        if request is not None:
            from training.runs.selectors import run_results_visible

            if not run_results_visible(user=request.user, run=run):
                # The snapshot holds projects this user may not read: no results, no samples.
                data["result"] = None
        return data

    def get_percent(self, run) -> int:
        from training.views.runs import _percent

        return _percent(run)

    def get_accuracies(self, run) -> dict:
        return accuracy_figures((run.result or {}).get("test") or {})

    def get_output_model(self, run) -> int | None:
        artifact = getattr(run, "output_model", None)
        return artifact.pk if artifact else None


class RunCreateSerializer(serializers.Serializer):
    project = serializers.SlugField(help_text="Slug of the project (you must be its manager).")
    snapshot = serializers.IntegerField(help_text="Id of a ready dataset snapshot of that project.")
    base_model = serializers.CharField(help_text="Id or name of a registered model.")
    method = serializers.ChoiceField(choices=(), help_text="A training method of the recipe registry (GET /api/training/recipes/).")
    use_lora = serializers.BooleanField(default=True)
    evaluate_after = serializers.BooleanField(default=True, help_text="Policy runs: queue an evaluation against the base model on the jobs queue when the run succeeds.")
    config = serializers.DictField(required=False, default=dict, help_text="Hyperparameters; missing ones take the recipe's defaults.")
    num_processes = serializers.IntegerField(default=1, min_value=1, max_value=64, help_text="Training processes, one per GPU (CPU workers: gloo processes).")
    distributed = serializers.ChoiceField(choices=TrainingRun.Distributed.choices, default=TrainingRun.Distributed.DDP,
                                          help_text="How several processes share the model: ddp, fsdp or zero3 (the last two need GPUs).")

    reward_model = serializers.CharField(required=False, allow_null=True, default=None,
                                         help_text="Id or name of a reward model; needed by online methods (PPO, RLOO, GRPO).")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Read per request, not at import: a method registered later is accepted too.
        self.fields["method"].choices = catalog.choices()


class RunStateSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    finished = serializers.BooleanField()
    cancel_requested = serializers.BooleanField()
    step = serializers.IntegerField()
    total_steps = serializers.IntegerField()
    percent = serializers.IntegerField()
    worker = serializers.CharField()
    device = serializers.CharField()
    attempts = serializers.IntegerField()
    heartbeat_at = serializers.DateTimeField(allow_null=True)
    metrics = serializers.ListField(child=serializers.DictField(), help_text="Metric points from index `since` on.")
    next = serializers.IntegerField(help_text="Pass as `since` next time to get only new points.")
    log_tail = serializers.CharField()
    error = serializers.CharField()


class ScoreRequestSerializer(serializers.Serializer):
    prompt = serializers.JSONField(help_text=f"Text, or a list of chat messages [{{role, content}}]: at most {scoring.MAX_PROMPT_CHARS} "
                                             f"characters and {scoring.MAX_PROMPT_MESSAGES} messages.")
    responses = serializers.ListField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=scoring.MAX_RESPONSE_CHARS),
        min_length=1, max_length=scoring.MAX_RESPONSES,
        help_text=f"At most {scoring.MAX_RESPONSES} responses of {scoring.MAX_RESPONSE_CHARS} characters; prompt and response together "
                  f"at most {scoring.MAX_TOKENS} tokens.",
    )

    weights = serializers.JSONField(
        required=False, allow_null=True, default=None,
        help_text=f"A multi-objective reward model only: how its heads combine, {{attribute: weight}} (each within ±{MAX_WEIGHT:g}; "
                  "attributes left out weigh 0). Absent or null: the weights the model was saved with.",
    )

    def validate_weights(self, value):
        # Shape and bounds here; the names against the model's heads on the worker (ScoringError "weights.<name>").
        if value is not None and not isinstance(value, dict):
            raise serializers.ValidationError('an object of attribute name to weight, e.g. {"helpfulness": 1}')
        try:
            return weights_parse(value, field="weights")
        except WeightsError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def validate_prompt(self, value):
        if isinstance(value, str):
            if len(value) > scoring.MAX_PROMPT_CHARS:
                raise serializers.ValidationError(f"at most {scoring.MAX_PROMPT_CHARS} characters, got {len(value)}")
            return value
        is_message = lambda m: isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)  # noqa: E731
        if isinstance(value, list) and value and all(is_message(m) for m in value):
            if len(value) > scoring.MAX_PROMPT_MESSAGES:
                raise serializers.ValidationError(f"at most {scoring.MAX_PROMPT_MESSAGES} messages, got {len(value)}")
            chars = sum(len(m["content"]) for m in value)
            if chars > scoring.MAX_PROMPT_CHARS:
                raise serializers.ValidationError(f"at most {scoring.MAX_PROMPT_CHARS} characters in all messages, got {chars}")
            return value
        raise serializers.ValidationError("a string, or a non-empty list of {role, content} messages")


class ScoreResponseSerializer(serializers.Serializer):
    model = serializers.IntegerField()
    scores = serializers.ListField(child=serializers.FloatField(), help_text="One reward per response, in order.")
