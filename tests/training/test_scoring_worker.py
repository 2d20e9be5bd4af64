"""Scoring runs on a worker of the `score` queue, never in the web process: the API answers 503
with a clear message when no worker answers in time, and scores through a real worker process
when one runs. Every request is capped (responses, characters, messages, tokens) with a 400 that
names the field."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.training.test_api import build_tiny_reward_model
from tests.workers import wait_for, worker_env, workers  # noqa: F401 - fixtures
from training.registry import scoring
from training.models import ModelArtifact

pytestmark = pytest.mark.django_db


@pytest.fixture
def reward_model(settings, project, snapshot):
    build_tiny_reward_model(Path(settings.ARTIFACT_ROOT) / "models" / "tiny-rm")
    return ModelArtifact.objects.create(name="tiny-rm", kind="reward_model", source="trained", path="models/tiny-rm", snapshot=snapshot)


def test_it_caps_a_score_request_naming_the_field(api_for, researcher, reward_model):
    url = f"/api/training/models/{reward_model.pk}/score/"
    post = lambda body: api_for(researcher).post(url, body, format="json")  # noqa: E731
    too_many = post({"prompt": "hi", "responses": ["a"] * (scoring.MAX_RESPONSES + 1)})
    assert too_many.status_code == 400 and "responses" in too_many.json() and str(scoring.MAX_RESPONSES) in str(too_many.json())
    too_long = post({"prompt": "hi", "responses": ["ok", "x" * (scoring.MAX_RESPONSE_CHARS + 1)]})
    assert too_long.status_code == 400 and "1" in too_long.json()["responses"], too_long.json()  # the second response
    long_prompt = post({"prompt": "x" * (scoring.MAX_PROMPT_CHARS + 1), "responses": ["a"]})
    assert long_prompt.status_code == 400 and "characters" in str(long_prompt.json()["prompt"])
    chat = [{"role": "user", "content": "hi"}] * (scoring.MAX_PROMPT_MESSAGES + 1)
    assert "messages" in str(post({"prompt": chat, "responses": ["a"]}).json()["prompt"])
    # Tokens are counted where the tokenizer is: on the worker (here inline: Celery is eager in tests).
    words = " thanks" * (scoring.MAX_TOKENS + 10)
    assert len(words) <= scoring.MAX_RESPONSE_CHARS
    tokens = post({"prompt": "question about apples", "responses": [" thanks", words]})
    assert tokens.status_code == 400 and "responses[1]" in tokens.json()["responses"][0] and "tokens" in tokens.json()["responses"][0]


@pytest.fixture
def broker(worker_env, tmp_path, settings):
    """A private broker and a result backend shared with the worker (files, or Redis)."""
    from config.celery import app

    backend = worker_env["CELERY_BROKER_URL"] if worker_env["CELERY_BROKER_URL"].startswith("redis") else f"file://{tmp_path / 'results'}"
    (tmp_path / "results").mkdir(exist_ok=True)
    saved = app.conf.result_backend
    app.conf.result_backend = backend
    app._backend_cache = None
    app._local.__dict__.pop("backend", None)
    yield {**worker_env, "CELERY_RESULT_BACKEND": backend}
    app.conf.result_backend = saved
    app._backend_cache = None
    app._local.__dict__.pop("backend", None)


def test_it_answers_503_when_no_scoring_worker_answers(api_for, researcher, reward_model, broker, settings):
    if broker["CELERY_BROKER_URL"].startswith("redis"):
        pytest.skip("the filesystem broker covers this")
    settings.ARBITER_SCORE_TIMEOUT_SECONDS = 1
    started = time.monotonic()
    response = api_for(researcher).post(f"/api/training/models/{reward_model.pk}/score/", {"prompt": "hi", "responses": ["a"]}, format="json")
    assert response.status_code == 503 and "no scoring worker answered within 1 s" in response.json()["detail"]
    assert "-Q score" in response.json()["detail"] and time.monotonic() - started < 10


@pytest.mark.slow
@pytest.mark.timeout(480)
@pytest.mark.django_db(transaction=True)
def test_it_scores_on_a_worker_of_the_score_queue(api_for, researcher, reward_model, broker, workers, settings):
    settings.ARBITER_SCORE_TIMEOUT_SECONDS = 120  # the first request waits for the worker to load the model
    workers.start("s1", queue="score")
    workers.wait_ready("s1")
    url = f"/api/training/models/{reward_model.pk}/score/"
    body = {"prompt": "question about apples", "responses": [" thanks very much", " whatever stop"]}
    response = api_for(researcher).post(url, body, format="json")
    assert response.status_code == 200, response.content
    scores = response.json()["scores"]
    assert len(scores) == 2 and all(isinstance(s, float) for s in scores)
    assert scores == scoring.score(model=reward_model, prompt=body["prompt"], responses=body["responses"])  # as inline, exactly
    too_long = api_for(researcher).post(url, {"prompt": "hi", "responses": [" thanks" * (scoring.MAX_TOKENS + 10)]}, format="json")
    assert too_long.status_code == 400 and "responses[0]" in too_long.json()["responses"][0]
    assert "score_responses" in workers.log("s1")
