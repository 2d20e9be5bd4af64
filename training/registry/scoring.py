"""Scores from a registered reward model: given a prompt and responses, one reward per response
(for AI feedback and for picking the pairs most worth a human's time).

Scoring runs on a worker of the `score` queue, never in the web process: the API view calls
`score_on_worker`, which sends training.tasks.score_responses and waits a few seconds for the
answer (ScoringUnavailable when no worker answers). A dedicated queue rather than `gpu`: a score
request must not wait behind a training run of several hours. Inputs are capped (the limits below:
the serializer checks counts and characters in the web process, the worker checks tokens).

The scoring itself is training/core/scorer.py's, the loading training/registry/loading.py's.
torch is imported inside the functions only."""
from __future__ import annotations

from training.core.heads import WeightsError, weights_check, weights_parse
from training.core.scorer import model_heads, pair_ids, reward_scores, scoring_length
from training.registry.loading import LoadError, reward_model_loaded
from training.registry.models import ModelArtifact

# Limits of one score request (the API documents them; ScoreRequestSerializer and score() enforce them).
MAX_RESPONSES = 32
MAX_PROMPT_CHARS = 20_000  # a text prompt, or all messages' contents together
MAX_PROMPT_MESSAGES = 64
MAX_RESPONSE_CHARS = 20_000
MAX_TOKENS = 2048  # prompt and one response together, or the model's context if shorter


class ScoringError(ValueError):
    """Bad input or an unusable model; the message starts with the field it is about."""

    def __init__(self, message: str, *, field: str = "model"):
        super().__init__(message)
        self.field = field


class ScoringUnavailable(Exception):
    """No scoring worker answered in time (or it failed)."""


def score_on_worker(*, model: ModelArtifact, prompt, responses: list, weights: dict[str, float] | None = None) -> list[float]:
    """The web side: send the request to the `score` queue and wait for the scores. Raises
    ScoringError (the request is at fault: 400) or ScoringUnavailable (503)."""
    from celery.exceptions import TimeoutError as CeleryTimeout
    from django.conf import settings

    from training.tasks import score_responses

    timeout = settings.ARBITER_SCORE_TIMEOUT_SECONDS
    # `expires`: a worker that picks the message up after we gave up drops it instead of scoring for nobody.
    # weights only when given: a message without them is the one every worker version understands.
    pending = score_responses.apply_async(args=[model.pk, prompt, list(responses)], kwargs={"weights": weights} if weights else {},
                                          queue="score", expires=timeout)
    try:
        answer = pending.get(timeout=timeout, propagate=False)
    except CeleryTimeout:
        raise ScoringUnavailable(
            f"no scoring worker answered within {timeout} s; start one with: celery -A config worker -Q score -c 1"
        ) from None
    finally:
        try:
            pending.forget()
        except Exception:  # noqa: BLE001 - an eager result or a backend without forget: nothing to clean up
            pass
    if not isinstance(answer, dict):
        raise ScoringUnavailable(f"the scoring worker failed: {answer!r}"[:500])
    if "error" in answer:
        raise ScoringError(answer["error"], field=answer.get("field", "model"))
    return answer["scores"]


def score_request(*, model_id: int, prompt, responses: list, weights: dict[str, float] | None = None) -> dict:
    """The worker side (training.tasks.score_responses): scores, or the error for a 400."""
    model = ModelArtifact.objects.select_related("base_model").filter(pk=model_id).first()
    if model is None:
        return {"error": f"no model {model_id}", "field": "model"}
    try:
        return {"scores": [float(s) for s in score(model=model, prompt=prompt, responses=responses, weights=weights)]}
    except ScoringError as exc:
        return {"error": str(exc), "field": exc.field}
    except (ValueError, OSError) as exc:
        return {"error": f"{model.name}: {exc}", "field": "model"}


def _check_kind(model: ModelArtifact) -> None:
    if model.kind != ModelArtifact.Kind.REWARD_MODEL:
        raise ScoringError(f"{model.name} is a {model.get_kind_display().lower()}, not a reward model")


def _reward_model(model: ModelArtifact):
    _check_kind(model)
    try:
        return reward_model_loaded(model)
    except LoadError as exc:
        raise ScoringError(str(exc)) from None


def score(*, model: ModelArtifact, prompt, responses: list, batch_size: int = 16, weights: dict[str, float] | None = None) -> list[float]:
    """Rewards for responses to one prompt (text, or a list of chat messages), higher is better.
    A request over the limit is refused rather than cut: its caller asked for these texts scored.
    `weights`: how a multi-objective model's heads combine (training/core/heads.py); None: its defaults."""
    _check_kind(model)
    try:
        weights = weights_parse(weights, field="weights")  # the worker checks what the web process checked: a message may come from elsewhere
    except WeightsError as exc:
        raise ScoringError(str(exc), field=exc.field) from None
    if not responses:
        return []
    if len(responses) > MAX_RESPONSES:
        raise ScoringError(f"responses: at most {MAX_RESPONSES} per request, got {len(responses)}", field="responses")
    net, tokenizer = _reward_model(model)
    try:
        weights_check(model_heads(net), weights, model=model.name)
    except WeightsError as exc:
        raise ScoringError(str(exc), field=exc.field) from None
    limit = scoring_length(net, tokenizer, MAX_TOKENS)
    prompts = [prompt] * len(responses)
    for i, ids in enumerate(pair_ids(tokenizer, prompts, responses, max_length=None)):
        if len(ids) > limit:
            raise ScoringError(f"responses[{i}]: the prompt and this response are {len(ids)} tokens; the limit is {limit}", field="responses")
    return reward_scores(net, tokenizer, prompts, responses, batch_size=batch_size, cap=MAX_TOKENS, weights=weights).cpu().tolist()


def reward_model_load(model: ModelArtifact, *, weights: dict[str, float] | None = None):
    """A registered reward model as a batched scorer for many prompts at once (policy evaluation):
    training.rl.models.RewardModel on the cached network. A pair longer than the model's context is
    cut from the left (training/core/scorer.py), where score() refuses it: one long answer must not
    cost an evaluation of hundreds of prompts."""
    from training.rl.models import RewardModel

    net, tokenizer = _reward_model(model)
    try:
        return RewardModel(net, tokenizer, max_length=MAX_TOKENS, weights=weights)
    except WeightsError as exc:
        raise ScoringError(str(exc), field=exc.field) from None
