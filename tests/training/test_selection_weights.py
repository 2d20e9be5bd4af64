"""Weights for a multi-objective reward model wherever a person picks one in the browser:
"least certain first" (training/selection/: the choice keeps {attribute: weight}, the scoring job
combines the heads under them) and the evaluation form on a policy's page (reward_weights, as the
API takes). Bad weights are refused naming the field; a single-head model takes none.

The models are the tiny 3-head (polite, rude, wordy) and single-head reward models of
test_multi_reward.py: random heads, enough to tell one weighting's order from another's."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse

from annotation.models import Candidate, Item
from annotation.selection import SelectionError, selection_set
from tests.annotation.test_selection import _order  # claim n items in a row: the order handed out
from tests.training.loop_fixtures import tiny_reward  # noqa: F401 (fixture)
from tests.training.test_evaluation import owned_policy, setup  # noqa: F401 (fixtures)
from tests.training.test_multi_reward import build_multi_head_model, multi_rm, response, single_rm  # noqa: F401 (fixtures)
from training.loop.models import Job
from training.models import ModelArtifact, SelectionChoice
from training.selection.job import pair_uncertainty


def _add_items(project, n: int) -> list[Item]:
    """Items whose two answers are made of the tiny tokenizer's words (thanks, whatever, filler),
    so that the heads see different inputs (add_items' "Answer 0 to p-00001" is all unknown words)."""
    import random

    rng = random.Random(5)
    items = Item.objects.bulk_create([Item(project=project, external_id=f"w-{i:03d}", prompt="question about rivers") for i in range(n)])
    items = list(Item.objects.filter(project=project).order_by("id"))
    Candidate.objects.bulk_create([Candidate(item=item, position=p, text=response(rng)[0], model_name=f"m{p}") for item in items for p in range(2)])
    return items


def _expected(items, model, weights):
    """Each item's margin under these weights, through the one scorer the score endpoint uses."""
    from training.registry.scoring import score

    out = {}
    for item in items:
        texts = list(item.candidates.order_by("position").values_list("text", flat=True))
        out[item.external_id] = pair_uncertainty(score(model=model, prompt=item.prompt, responses=texts, weights=weights))
    return out


def _stored(items):
    return dict(Item.objects.filter(pk__in=[i.pk for i in items]).values_list("external_id", "priority"))


@pytest.mark.slow
def test_it_orders_pending_items_by_the_weighted_heads(project, add_items, member, multi_rm, django_capture_on_commit_callbacks):
    items = _add_items(project, 8)
    with django_capture_on_commit_callbacks(execute=True):
        selection_set(project=project, selection="uncertain", model_id=multi_rm.pk, weights="rude=1")
    assert SelectionChoice.objects.get(project=project).weights == {"rude": 1.0}
    project.refresh_from_db()
    assert project.selection_status["state"] == "done" and project.selection_status["weights"] == {"rude": 1.0}
    rude = _expected(items, multi_rm, {"rude": 1})
    assert _stored(items) == pytest.approx(rude, abs=1e-5)
    # The saved weights (polite=1, rude=-1) order otherwise: the job did use the stored ones.
    default = _expected(items, multi_rm, None)
    assert default != pytest.approx(rude, abs=1e-3)
    assert len(set(rude.values())) == 8  # distinct margins: the order below is the heads', not the ids'
    assert _order(project, member, 8) == sorted(rude, key=lambda k: rude[k])

    # Changing only the weights scores again (as changing the model does), now by the polite head.
    with django_capture_on_commit_callbacks(execute=False) as queued:
        selection_set(project=project, selection="uncertain", model_id=multi_rm.pk, weights={"polite": 2})
    project.refresh_from_db()
    assert len(queued) == 1 and project.selection_status["state"] == "queued"
    queued[0]()
    polite = _expected(items, multi_rm, {"polite": 2})
    assert _stored(items) == pytest.approx(polite, abs=1e-5)

    # Cleared: the weights the model was saved with.
    with django_capture_on_commit_callbacks(execute=True):
        selection_set(project=project, selection="uncertain", model_id=multi_rm.pk, weights="")
    assert SelectionChoice.objects.get(project=project).weights == {}
    assert _stored(items) == pytest.approx(default, abs=1e-5)


def test_it_refuses_bad_selection_weights_naming_the_field(project, add_items, multi_rm, single_rm):
    add_items(project, 2)
    selection_set(project=project, selection="random", model_id=multi_rm.pk, weights="polite=1")
    cases = [
        (multi_rm, {"kind": 1}, "selection_weights.kind: multi-rm has no attribute 'kind' (it has polite, rude, wordy)"),
        (multi_rm, "polite=lots", "selection_weights.polite: 'lots' is not a number"),
        (multi_rm, {"polite": True}, "selection_weights.polite: 'True' is not a number"),
        (multi_rm, {"polite": 1000}, "selection_weights.polite: 1000 is outside -100..100"),
        (multi_rm, "polite", "selection_weights: 'polite' is not name=weight"),
        (multi_rm, [1, 2], "selection_weights: an object of attribute name to weight"),
        (single_rm, {"polite": 1}, "selection_weights: tiny-rm has a single head: it has no attributes to weight"),
    ]
    for model, weights, message in cases:
        with pytest.raises(SelectionError) as caught:
            selection_set(project=project, selection="uncertain", model_id=model.pk, weights=weights)
        assert str(caught.value).startswith(message), (weights, str(caught.value))
    # Nothing was stored by a refusal: the earlier choice stands.
    choice = SelectionChoice.objects.get(project=project)
    assert choice.model == multi_rm and choice.weights == {"polite": 1.0}
    # A single-head model without weights is as before.
    selection_set(project=project, selection="random", model_id=single_rm.pk, weights=None)
    assert SelectionChoice.objects.get(project=project).weights == {}


def test_it_keeps_weights_for_the_newest_model_and_fails_in_words_when_a_newer_one_lacks_the_head(
        project, add_items, snapshot, multi_rm, single_rm, django_capture_on_commit_callbacks):
    from training.selection.services import on_reward_model_registered

    add_items(project, 3)
    ModelArtifact.objects.filter(pk=single_rm.pk).update(snapshot=None)  # the project's newest is multi-rm
    with django_capture_on_commit_callbacks(execute=False):
        selection_set(project=project, selection="uncertain", weights="wordy=1")  # no model chosen: the newest
    choice = SelectionChoice.objects.get(project=project)
    assert choice.model is None and choice.weights == {"wordy": 1.0}
    newer = ModelArtifact.objects.create(name="rm-single-newer", kind=ModelArtifact.Kind.REWARD_MODEL, source=ModelArtifact.Source.TRAINED,
                                         path=single_rm.path, snapshot=snapshot)
    with django_capture_on_commit_callbacks(execute=True):
        on_reward_model_registered(model=newer)  # a weights-only row still follows the newest
    project.refresh_from_db()
    status = project.selection_status
    assert status["state"] == "failed" and status["model"] == "rm-single-newer"
    assert status["error"].startswith("selection_weights: rm-single-newer has a single head"), status


@pytest.mark.parametrize("who, get, put", [("owner", 200, 200), ("researcher", 200, 403), ("member", 403, 403), ("outsider", 404, 404)])
def test_it_sets_weights_over_the_api_for_managers_only(project, add_items, multi_rm, api_for, request, who, get, put):
    add_items(project, 2)
    selection_set(project=project, selection="random", model_id=multi_rm.pk, weights="polite=0.5")
    client = api_for(request.getfixturevalue(who))
    url = f"/api/projects/{project.slug}/selection/"
    read = client.get(url)
    assert read.status_code == get
    if get == 200:
        body = read.json()
        assert body["selection_weights"] == {"polite": 0.5} and body["selection_attributes"] == ["polite", "rude", "wordy"]
    written = client.put(url, {"selection": "random", "selection_model": multi_rm.pk, "selection_weights": {"wordy": -1, "rude": 2}}, format="json")
    assert written.status_code == put, written.content
    stored = SelectionChoice.objects.get(project=project).weights
    if put == 200:
        assert written.json()["selection_weights"] == {"wordy": -1.0, "rude": 2.0} == stored
        bad = client.put(url, {"selection": "random", "selection_model": multi_rm.pk, "selection_weights": {"kind": 1}}, format="json")
        assert bad.status_code == 400 and "has no attribute 'kind'" in bad.json()["selection_weights.kind"][0]
        bad = client.put(url, {"selection": "random", "selection_model": multi_rm.pk, "selection_weights": {"rude": "x"}}, format="json")
        assert bad.status_code == 400 and "not a number" in bad.json()["selection_weights.rude"][0]
        assert SelectionChoice.objects.get(project=project).weights == {"wordy": -1.0, "rude": 2.0}
    else:
        assert stored == {"polite": 0.5}


def test_it_refuses_weights_for_a_single_head_model_over_the_api(project, add_items, single_rm, api_for, owner):
    add_items(project, 2)
    url = f"/api/projects/{project.slug}/selection/"
    res = api_for(owner).put(url, {"selection": "uncertain", "selection_model": single_rm.pk, "selection_weights": {"polite": 1}}, format="json")
    assert res.status_code == 400 and "single head" in res.json()["selection_weights"][0]
    assert not SelectionChoice.objects.filter(project=project).exists()
    ok = api_for(owner).put(url, {"selection": "random", "selection_model": single_rm.pk, "selection_weights": None}, format="json")
    assert ok.status_code == 200 and ok.json()["selection_weights"] == {} and ok.json()["selection_attributes"] is None


@pytest.mark.parametrize("who, get, post", [("owner", 200, 302), ("researcher", 200, 403), ("member", 403, 403), ("outsider", 404, 404)])
def test_it_shows_and_sets_weights_on_the_page(project, add_items, multi_rm, client_for, request, who, get, post):
    add_items(project, 2)
    selection_set(project=project, selection="random", model_id=multi_rm.pk, weights="polite=0.5")
    client = client_for(request.getfixturevalue(who))
    url = reverse("annotation:project-selection", kwargs={"slug": project.slug})
    page = client.get(url)
    assert page.status_code == get
    if who == "owner":
        html = page.content.decode()
        assert "Weights (multi-objective reward models)" in html and 'name="selection_weights"' in html
        assert 'value="polite=0.5"' in html and "multi-rm scores polite, rude, wordy" in html
    res = client.post(url, {"selection": "random", "selection_model": multi_rm.pk, "selection_weights": "rude=1, wordy=-0.5"})
    assert res.status_code == post
    weights = SelectionChoice.objects.get(project=project).weights
    assert weights == ({"rude": 1.0, "wordy": -0.5} if post == 302 else {"polite": 0.5})
    if post == 302:
        refused = client.post(url, {"selection": "random", "selection_model": multi_rm.pk, "selection_weights": "rude=1, kind=2"}, follow=True)
        html = refused.content.decode()
        assert "Weights (selection_weights.kind): multi-rm has no attribute" in html
        assert SelectionChoice.objects.get(project=project).weights == {"rude": 1.0, "wordy": -0.5}


def test_it_says_a_single_head_model_takes_no_weights_on_the_page(project, add_items, single_rm, client_for, owner):
    add_items(project, 2)
    selection_set(project=project, selection="random", model_id=single_rm.pk)
    url = reverse("annotation:project-selection", kwargs={"slug": project.slug})
    assert "tiny-rm has a single head: leave this empty" in client_for(owner).get(url).content.decode()
    refused = client_for(owner).post(url, {"selection": "random", "selection_model": single_rm.pk, "selection_weights": "polite=1"}, follow=True)
    assert "Weights (selection_weights): tiny-rm has a single head" in refused.content.decode()
    assert SelectionChoice.objects.get(project=project).weights == {}


# --- the evaluation form on a policy's page -------------------------------------------------------

@pytest.fixture
def multi_judge(owned_policy, settings):
    policy, judge, snapshot = owned_policy
    build_multi_head_model(Path(settings.ARTIFACT_ROOT) / "models" / "judge-3", weights={"polite": 1.0, "rude": -1.0, "wordy": 0.0})
    rm = ModelArtifact.objects.create(name="judge-3", kind=ModelArtifact.Kind.REWARD_MODEL, source=ModelArtifact.Source.TRAINED,
                                      path="models/judge-3", snapshot=snapshot)
    return policy, rm, judge


def test_it_queues_an_evaluation_with_reward_weights_from_the_policys_page(multi_judge, client_for, owner, member, outsider):
    policy, rm, single = multi_judge
    page = client_for(owner).get(f"/training/models/{policy.pk}/").content.decode()
    assert 'name="reward_weights"' in page and "judge-3: polite, rude, wordy" in page
    url = f"/training/models/{policy.pk}/evaluate/"
    data = {"reward_model": rm.pk, "prompts": "demo:v1", "limit": 4, "max_new_tokens": 8, "reward_weights": "polite=1, rude=-0.5"}
    assert client_for(member).post(url, data).status_code == 403
    assert client_for(outsider).post(url, data).status_code == 404
    assert not Job.objects.exists()
    res = client_for(owner).post(url, data)
    job = Job.objects.get()
    assert res.status_code == 302 and res["Location"] == f"/training/jobs/{job.pk}/"
    assert job.params["reward_weights"] == {"polite": 1.0, "rude": -0.5} and job.params["reward_model"] == rm.pk
    shown = client_for(owner).get(res["Location"]).content.decode()
    assert 'id="reward-weights">reward weights ' in shown  # PostgreSQL's jsonb keeps its own key order
    assert "polite=1.0" in shown and "rude=-0.5" in shown


def test_it_refuses_bad_reward_weights_on_the_form_naming_the_field(multi_judge, client_for, owner):
    policy, rm, single = multi_judge
    url = f"/training/models/{policy.pk}/evaluate/"
    base = {"prompts": "demo:v1", "limit": 4, "max_new_tokens": 8}
    cases = [
        (rm, "kind=1", "reward_weights.kind: judge-3 has no attribute 'kind'"),
        (rm, "polite=much", "reward_weights.polite: 'much' is not a number"),
        (single, "polite=1", "reward_weights: tiny-rm has a single head"),
    ]
    for judge, weights, message in cases:
        res = client_for(owner).post(url, {**base, "reward_model": judge.pk, "reward_weights": weights}, follow=True)
        html = res.content.decode()
        assert "Evaluation not queued: " + message.replace("'", "&#x27;") in html, (weights, html[-3000:])
    assert not Job.objects.exists()
