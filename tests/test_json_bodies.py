"""Every JSON body goes through the one bounded parser (config.jsonlimits): a lone surrogate in a key
or a value, NaN or Infinity as a number, nesting past the limit, or a list or string where an object
belongs is a 400 that names the field, on the API and on the labelling page's demonstration and
preview routes, and nothing is stored."""
from __future__ import annotations

import pytest

from annotation.assignment import lease_next
from annotation.models import Demonstration, Project
from training.loop.models import Job
from training.models import ModelArtifact, TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def snapshot(project):
    from annotation.models import DatasetSnapshot

    return DatasetSnapshot.objects.create(project=project, version=1, status=DatasetSnapshot.Status.READY, path="snapshots/demo/v1")


@pytest.fixture
def policy(snapshot):
    base = ModelArtifact.objects.create(name="smol", kind=ModelArtifact.Kind.CAUSAL_LM, source=ModelArtifact.Source.GGUF, path="models/smol")
    return ModelArtifact.objects.create(name="policy", kind=ModelArtifact.Kind.POLICY, source=ModelArtifact.Source.TRAINED,
                                        path="models/policy", base_model=base, snapshot=snapshot)


def post_raw(client, url, body: str):
    return client.post(url, body.encode("utf-8"), content_type="application/json")


def api_routes(project, policy):
    return ["/api/training/runs/", f"/api/training/models/{policy.pk}/evaluations/",
            f"/api/training/models/{policy.pk}/generation-batches/",
            f"/api/training/projects/{project.slug}/judge-jobs/"]


def test_a_surrogate_in_a_key_is_named_by_its_escape_on_every_api_route(api_for, owner, project, policy):
    for url in api_routes(project, policy):
        response = post_raw(api_for(owner), url, '{"\\ud800": 1, "config": {"\\udc00x": 2}}')
        assert response.status_code == 400, (url, response.content)
        assert "\\ud800" in response.json() and "surrogate" in response.json()["\\ud800"][0], url
    response = post_raw(api_for(owner), "/api/training/runs/", '{"config": {"\\udfff": 1}}')
    assert response.status_code == 400 and "config.\\udfff" in response.json()
    assert not TrainingRun.objects.exists() and not Job.objects.exists()


@pytest.mark.parametrize("raw, field, message", [
    ('{"config": {"beta": "\\ud800"}}', "config.beta", "surrogate"),
    ('{"config": {"beta": NaN}}', "config.beta", "NaN is not a finite number"),
    ('{"config": {"beta": Infinity}}', "config.beta", "Infinity is not a finite number"),
    ('{"config": {"beta": -Infinity}}', "config.beta", "-Infinity is not a finite number"),
    ('{"config": {"beta": 1e999}}', "config.beta", "1e999 is not a finite number"),
    ('{"limit": NaN}', "limit", "NaN is not a finite number"),
])
def test_a_bad_value_is_named_on_the_api(api_for, owner, project, policy, raw, field, message):
    for url in api_routes(project, policy):
        response = post_raw(api_for(owner), url, raw)
        assert response.status_code == 400, (url, response.content)
        assert message in response.json()[field][0], url
    assert not TrainingRun.objects.exists() and not Job.objects.exists()


@pytest.mark.parametrize("raw", ["[1, 2, 3]", '"hello"', "42", "null"])
def test_a_body_that_is_not_an_object_is_refused_by_the_job_routes(api_for, owner, policy, raw):
    for url in (f"/api/training/models/{policy.pk}/evaluations/", f"/api/training/models/{policy.pk}/generation-batches/"):
        response = post_raw(api_for(owner), url, raw)
        assert response.status_code == 400, (url, response.content)
        assert "must be a JSON object" in response.json()["non_field_errors"][0]
    assert not Job.objects.exists()


def test_a_run_config_that_is_not_an_object_is_named(api_for, owner, project, snapshot, policy):
    for config in ("[1, 2]", '"fast"'):
        body = '{"project": "demo", "snapshot": %d, "base_model": "smol", "method": "dpo", "config": %s}' % (snapshot.pk, config)
        response = post_raw(api_for(owner), "/api/training/runs/", body)
        assert response.status_code == 400 and "config" in response.json()
    assert not TrainingRun.objects.exists()


# --- the labelling page's demonstration editor and preview --------------------------------------

@pytest.fixture
def writing(project, add_items, member):
    project.demonstrations = Project.Demonstrations.ALONGSIDE
    project.save()
    add_items(project, 1)
    return project, lease_next(project=project, rater=member)


DEEP = '{"text": ' + "[" * 5000 + "]" * 5000 + "}"


@pytest.mark.parametrize("raw, field, message", [
    (DEEP, "text", "nested deeper than"),
    ('{"text": "\\ud800 an answer"}', "text", "surrogate"),
    ('{"\\ud800": "x", "text": "an answer"}', "\\ud800", "surrogate"),
    ('{"text": "an answer", "source_position": NaN}', "source_position", "not a finite number"),
    ("[1, 2]", "body", "must be a JSON object"),
])
def test_the_demonstration_and_preview_routes_use_the_bounded_parser(client_for, member, writing, raw, field, message):
    project, lease = writing
    for url in (f"/projects/{project.slug}/label/{lease.id}/demonstration/", f"/projects/{project.slug}/label/preview/"):
        response = post_raw(client_for(member), url, raw)
        assert response.status_code == 400, (url, response.content)
        assert response.json()["field"] == field and message in response.json()["error"], url
    assert not Demonstration.objects.exists()
