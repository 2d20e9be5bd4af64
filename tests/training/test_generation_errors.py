"""A 400 from the generation-batches and evaluations API names the field the user got wrong, and
reads as English ("an encoder"), instead of using the whole message as the field name."""
from __future__ import annotations

import pytest

from annotation.kinds import Kind
from training.api.jobs import error_by_field
from training.loop.models import Job
from training.registry.models import ModelArtifact

from tests.training.test_generation import page_policy, policies, snap  # noqa: F401 - fixtures


@pytest.fixture
def encoder(db):
    return ModelArtifact.objects.create(name="all-minilm-l6-v2", kind=ModelArtifact.Kind.ENCODER, source=ModelArtifact.Source.LOCAL,
                                        path="models/all-minilm-l6-v2")


def test_it_names_the_policies_field_for_an_encoder_in_a_batch(page_policy, make_project, api_for, owner, encoder):
    make_project(Kind.BINARY, slug="round-2")
    body = {"project": "round-2", "prompts": "demo:v1", "limit": 5,
            "policies": [{"model": "tiny-new", "temperature": 0.7}, {"model": "all-minilm-l6-v2", "temperature": 1.0}]}
    res = api_for(owner).post(f"/api/training/models/{page_policy.pk}/generation-batches/", body, format="json")
    assert res.status_code == 400
    assert res.json() == {"policies": ["all-minilm-l6-v2 is an encoder, not a language model that can answer"]}
    assert not Job.objects.exists()


def test_it_names_the_reward_model_field_with_the_right_article(page_policy, api_for, owner, encoder):
    body = {"reward_model": "all-minilm-l6-v2", "prompts": "demo:v1", "limit": 5}
    res = api_for(owner).post(f"/api/training/models/{page_policy.pk}/evaluations/", body, format="json")
    assert res.status_code == 400
    assert res.json() == {"reward_model": ["all-minilm-l6-v2 is an encoder, not a reward model"]}


@pytest.mark.dbless
def test_it_never_makes_a_field_of_a_message_without_one():
    assert error_by_field("limit: 0 must be 1..2000") == {"limit": ["0 must be 1..2000"]}
    assert error_by_field("policies[1].k: 9 is too many") == {"policies[1].k": ["9 is too many"]}
    text = "every one of the 5 prompts got an empty answer: nothing to send"
    assert error_by_field(text) == {"non_field_errors": [text]}
    assert error_by_field("x is a thing, not a model") == {"non_field_errors": ["x is a thing, not a model"]}
