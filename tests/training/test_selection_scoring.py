"""'Least certain first' (training/selection/): the project's reward model, the job that scores
pending items into annotation's priority column, and the choice of model on the page, the API
and the command line. Without training, annotation orders fewest/random only
(tests/annotation/test_selection.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse

from annotation.models import DatasetSnapshot, Item
from annotation.selection import selection_set
from training.models import ModelArtifact, SelectionChoice
from tests.annotation.test_selection import _order  # claim n items in a row: the order handed out
from training.selection.job import pair_uncertainty


def test_it_measures_uncertainty_as_the_gap_between_the_closest_candidates():
    assert pair_uncertainty([1.0, 3.0]) == 2.0
    assert pair_uncertainty([0.5, -0.5, 0.4]) == pytest.approx(0.1)
    assert pair_uncertainty([2.0]) == 0.0


@pytest.fixture
def reward_model(db, settings):
    """A tiny reward model (random weights, real tokenizer) registered like a trained one."""
    from tests.training.conftest import build_tokenizer
    from tests.tiny_models import tiny_reward_model

    tokenizer = build_tokenizer()
    folder = Path(settings.ARTIFACT_ROOT) / "models" / "rm"
    folder.mkdir(parents=True)
    model = tiny_reward_model(tokenizer, seed=3)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return ModelArtifact.objects.create(name="rm", kind=ModelArtifact.Kind.REWARD_MODEL, source=ModelArtifact.Source.LOCAL, path="models/rm")


@pytest.mark.slow
def test_it_scores_pending_items_and_hands_out_the_least_certain_first(project, add_items, member, reward_model, django_capture_on_commit_callbacks):
    from training.registry.scoring import score

    items = add_items(project, 6)
    Item.objects.filter(pk=items[0].pk).update(judgment_count=1, taken=1)  # done: not pending, not scored
    with django_capture_on_commit_callbacks(execute=True):
        selection_set(project=project, selection="uncertain", model_id=reward_model.pk)
    project.refresh_from_db()
    assert project.selection_status["state"] == "done" and project.selection_status["scored"] == 5
    expected = {}
    for item in items[1:]:
        texts = list(item.candidates.order_by("position").values_list("text", flat=True))
        expected[item.external_id] = pair_uncertainty(score(model=reward_model, prompt=item.prompt, responses=texts))
    stored = dict(Item.objects.filter(pk__in=[i.pk for i in items[1:]]).values_list("external_id", "priority"))
    assert stored == pytest.approx(expected, abs=1e-5)
    assert Item.objects.get(pk=items[0].pk).priority == 0.0
    assert _order(project, member, 5) == sorted(expected, key=lambda k: (expected[k], k))


@pytest.mark.slow
def test_it_rescores_when_a_newer_reward_model_of_the_project_is_registered(project, add_items, reward_model, django_capture_on_commit_callbacks):
    from training.selection.services import on_reward_model_registered

    add_items(project, 3)
    snap = DatasetSnapshot.objects.create(project=project, version=1, status=DatasetSnapshot.Status.READY, path="snapshots/demo/v1")
    ModelArtifact.objects.filter(pk=reward_model.pk).update(snapshot=snap)
    reward_model.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        selection_set(project=project, selection="uncertain")  # no model chosen: the newest of the project
    newer = ModelArtifact.objects.create(name="rm2", kind=ModelArtifact.Kind.REWARD_MODEL, source=ModelArtifact.Source.TRAINED,
                                         path=reward_model.path, snapshot=snap)
    with django_capture_on_commit_callbacks(execute=True):
        on_reward_model_registered(model=newer)
    project.refresh_from_db()
    assert project.selection_status["model"] == "rm2" and project.selection_status["state"] == "done"
    assert project.selection_status["reason"] == "new reward model rm2"


def test_it_offers_the_projects_reward_models_and_keeps_the_choice(client_for, api_for, project, owner, add_items, reward_model):
    add_items(project, 2)
    url = reverse("annotation:project-selection", kwargs={"slug": project.slug})
    page = client_for(owner).get(url).content.decode()
    assert f'<option value="{reward_model.pk}">rm</option>' in page
    api = f"/api/projects/{project.slug}/selection/"
    chosen = api_for(owner).put(api, {"selection": "random", "selection_model": reward_model.pk}, format="json")
    assert chosen.status_code == 200 and chosen.json()["selection_model"] == reward_model.pk
    assert SelectionChoice.objects.get(project=project).model == reward_model
    assert f'<option value="{reward_model.pk}" selected>rm</option>' in client_for(owner).get(url).content.decode()
    policy = ModelArtifact.objects.create(name="pol", kind=ModelArtifact.Kind.POLICY, source=ModelArtifact.Source.LOCAL, path="models/pol")
    refused = api_for(owner).put(api, {"selection": "random", "selection_model": policy.pk}, format="json")
    assert refused.status_code == 400 and "no reward model with this id" in str(refused.json()["selection_model"])
    cleared = api_for(owner).put(api, {"selection": "fewest", "selection_model": None}, format="json")
    assert cleared.json()["selection_model"] is None and not SelectionChoice.objects.filter(project=project).exists()
    reward_model.delete()  # the choice goes with its model: back to the newest of the project


def test_it_sets_the_model_from_the_command_line(project, add_items, reward_model, capsys, django_capture_on_commit_callbacks):
    add_items(project, 2)
    with django_capture_on_commit_callbacks(execute=False):
        call_command("selection", "--project", project.slug, "--order", "uncertain", "--model", "rm")
    assert "reward model's least certain first" in capsys.readouterr().out
    assert SelectionChoice.objects.get(project=project).model == reward_model


def test_it_neither_offers_nor_accepts_another_projects_reward_model(client_for, api_for, make_project, project, owner, add_items,
                                                                     reward_model):
    """A's managers never see B's model names, and cannot store B's model as A's choice."""
    other = make_project(slug="other", name="Other")
    snap = DatasetSnapshot.objects.create(project=other, version=1, status=DatasetSnapshot.Status.READY, path="snapshots/other/v1")
    theirs = ModelArtifact.objects.create(name="secret-rm-of-b", kind=ModelArtifact.Kind.REWARD_MODEL, source=ModelArtifact.Source.TRAINED,
                                          path=reward_model.path, snapshot=snap)
    ours_snap = DatasetSnapshot.objects.create(project=project, version=1, status=DatasetSnapshot.Status.READY, path="snapshots/p/v1")
    ours = ModelArtifact.objects.create(name="rm-of-a", kind=ModelArtifact.Kind.REWARD_MODEL, source=ModelArtifact.Source.TRAINED,
                                        path=reward_model.path, snapshot=ours_snap)
    add_items(project, 2)
    page = client_for(owner).get(reverse("annotation:project-selection", kwargs={"slug": project.slug})).content.decode()
    assert "rm-of-a" in page and "secret-rm-of-b" not in page
    api = f"/api/projects/{project.slug}/selection/"
    refused = api_for(owner).put(api, {"selection": "random", "selection_model": theirs.pk}, format="json")
    assert refused.status_code == 400 and "secret-rm-of-b" not in refused.content.decode()
    missing = api_for(owner).put(api, {"selection": "random", "selection_model": 10**9}, format="json")
    assert missing.json() == refused.json()  # no telling "not there" from "not yours"
    assert not SelectionChoice.objects.filter(project=project).exists()
    assert api_for(owner).put(api, {"selection": "random", "selection_model": ours.pk}, format="json").status_code == 200
    assert SelectionChoice.objects.get(project=project).model == ours
