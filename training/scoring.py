"""Scores from a registered reward model: given a prompt and responses, one reward per response
(for AI feedback and for picking the pairs most worth a human's time).

Scoring runs on a worker of the `score` queue, never in the web process: the API view calls
`score_on_worker`, which sends training.tasks.score_responses and waits a few seconds for the
answer (ScoringUnavailable when no worker answers). A dedicated queue rather than `gpu`: a score
request must not wait behind a training run of several hours. Inputs are capped (the limits below:
the serializer checks counts and characters in the web process, the worker checks tokens).

Loaded models stay in a small cache of the worker process keyed by the artifact and its path, so
a loop of calls does not reload weights. torch is imported inside the functions only."""
from __future__ import annotations

import threading
from collections import OrderedDict

from training.models import ModelArtifact
from training.paths import artifact_path

CACHE_SIZE = 2
# Limits of one score request (the API documents them; ScoreRequestSerializer and score() enforce them).
MAX_RESPONSES = 32
MAX_PROMPT_CHARS = 20_000  # a text prompt, or all messages' contents together
MAX_PROMPT_MESSAGES = 64
MAX_RESPONSE_CHARS = 20_000
MAX_TOKENS = 2048  # prompt and one response together, or the model's context if shorter
_cache: OrderedDict[tuple, tuple] = OrderedDict()
_lock = threading.Lock()


class ScoringError(ValueError):
    """Bad input or an unusable model; the message starts with the field it is about."""

    def __init__(self, message: str, *, field: str = "model"):
        super().__init__(message)
        self.field = field


class ScoringUnavailable(Exception):
    """No scoring worker answered in time (or it failed)."""


def score_on_worker(*, model: ModelArtifact, prompt, responses: list) -> list[float]:
    """The web side: send the request to the `score` queue and wait for the scores. Raises
    ScoringError (the request is at fault: 400) or ScoringUnavailable (503)."""
    from celery.exceptions import TimeoutError as CeleryTimeout
    from django.conf import settings

    from training.tasks import score_responses

    timeout = settings.ARBITER_SCORE_TIMEOUT_SECONDS
    # `expires`: a worker that picks the message up after we gave up drops it instead of scoring for nobody.
    pending = score_responses.apply_async(args=[model.pk, prompt, list(responses)], queue="score", expires=timeout)
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


def score_request(*, model_id: int, prompt, responses: list) -> dict:
    """The worker side (training.tasks.score_responses): scores, or the error for a 400."""
    model = ModelArtifact.objects.select_related("base_model").filter(pk=model_id).first()
    if model is None:
        return {"error": f"no model {model_id}", "field": "model"}
    try:
        return {"scores": [float(s) for s in score(model=model, prompt=prompt, responses=responses)]}
    except ScoringError as exc:
        return {"error": str(exc), "field": exc.field}
    except (ValueError, OSError) as exc:
        return {"error": f"{model.name}: {exc}", "field": "model"}


def _load(model: ModelArtifact):
    import torch
    from transformers import AutoModelForSequenceClassification

    from training.recipes.common import load_tokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    folder = artifact_path(model.path)
    if model.is_adapter:
        from peft import PeftModel

        if model.base_model is None:
            raise ScoringError(f"{model.name}: an adapter without a base model cannot be loaded")
        base = AutoModelForSequenceClassification.from_pretrained(
            str(artifact_path(model.base_model.path)), num_labels=1, use_safetensors=True
        )
        net = PeftModel.from_pretrained(base, str(folder), use_safetensors=True)
    else:
        net = AutoModelForSequenceClassification.from_pretrained(str(folder), num_labels=1, use_safetensors=True)
    tokenizer = load_tokenizer(folder)
    # The head reads the last non-pad token; it must agree with the tokenizer on which that is.
    net.config.pad_token_id = tokenizer.pad_token_id
    if hasattr(net, "get_base_model"):
        net.get_base_model().config.pad_token_id = tokenizer.pad_token_id
    return net.to(device).eval(), tokenizer


def _loaded(model: ModelArtifact):
    key = (model.pk, model.path, model.is_adapter)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    loaded = _load(model)
    with _lock:
        _cache[key] = loaded
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return loaded


def cache_clear() -> None:
    with _lock:
        _cache.clear()


def _texts(tokenizer, prompt, responses) -> list:
    """Each response after its prompt, as the RewardTrainer saw pairs (training/chat.py)."""
    from training.chat import render_pair

    return [render_pair(tokenizer, prompt, response) for response in responses]


def score(*, model: ModelArtifact, prompt, responses: list, batch_size: int = 16) -> list[float]:
    """Rewards for responses to one prompt (text, or a list of chat messages), higher is better."""
    import torch

    from training.chat import special_tokens

    if model.kind != ModelArtifact.Kind.REWARD_MODEL:
        raise ScoringError(f"{model.name} is a {model.get_kind_display().lower()}, not a reward model")
    if not responses:
        return []
    if len(responses) > MAX_RESPONSES:
        raise ScoringError(f"responses: at most {MAX_RESPONSES} per request, got {len(responses)}", field="responses")
    net, tokenizer = _loaded(model)
    device = next(net.parameters()).device
    texts = _texts(tokenizer, prompt, responses)
    # As in training: the chat template carries its own special tokens, plain text gets the tokenizer's.
    special = special_tokens(tokenizer, prompt)
    limit = min(MAX_TOKENS, getattr(net.config, "max_position_embeddings", None) or MAX_TOKENS)
    for i, ids in enumerate(tokenizer(texts, add_special_tokens=special)["input_ids"]):
        if len(ids) > limit:
            raise ScoringError(f"responses[{i}]: the prompt and this response are {len(ids)} tokens; the limit is {limit}", field="responses")
    tokenizer.padding_side = "right"
    scores: list[float] = []
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(texts[start : start + batch_size], padding=True, return_tensors="pt", add_special_tokens=special)
        with torch.no_grad():
            logits = net(input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device)).logits
        scores += logits[:, 0].float().cpu().tolist()
    return scores


def reward_model_load(model: ModelArtifact):
    """A registered reward model as a batched scorer for many prompts at once (policy evaluation):
    training.rl.models.RewardModel on the cached network, texts rendered as score() renders them.
    A pair longer than the model's context is cut from the left (the head reads the last token),
    where score() refuses it: one long answer must not cost an evaluation of hundreds of prompts."""
    from training.rl.models import RewardModel

    if model.kind != ModelArtifact.Kind.REWARD_MODEL:
        raise ScoringError(f"{model.name} is a {model.get_kind_display().lower()}, not a reward model")
    net, tokenizer = _loaded(model)
    limit = min(MAX_TOKENS, getattr(net.config, "max_position_embeddings", None) or MAX_TOKENS)
    return RewardModel(net, tokenizer, max_length=limit)
