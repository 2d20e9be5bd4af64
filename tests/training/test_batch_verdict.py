"""A generation batch that names a reward model records its verdict on the very pairs the raters
get, beside theirs on the job's page: where the two part, the reward model is wrong."""
import pytest

from annotation.kinds import Kind
from annotation.models import Candidate
from tests.training.conftest import preference_rows
from tests.training.loop_fixtures import tiny_reward  # noqa: F401
from training.loop.batches import generation_batch_create
from training.loop.generation import GenerationError, Sampling
from training.loop.models import Job
from training.models import ModelArtifact

SAMPLING = Sampling(temperature=1.0, max_new_tokens=6)


@pytest.fixture
def setup(project, tiny_model, tiny_reward, make_snapshot, make_project):
    base = tiny_model("tiny-base", seed=0)
    new = tiny_model("tiny-new", seed=3)
    snapshot = make_snapshot(project, preference_rows(6, seed=0), preference_rows(10, seed=1))
    return base, new, tiny_reward(), snapshot, make_project(Kind.BINARY, slug="round-2")


def _run(target, snapshot, owner, policies, judge, capture):
    with capture(execute=True):
        job = generation_batch_create(project=target, snapshot=snapshot, created_by=owner, policies=policies, reward_model=judge)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    return job


@pytest.mark.slow
def test_the_reward_models_verdict_is_on_the_pairs_the_raters_get(setup, owner, client_for, monkeypatch,
                                                                  django_capture_on_commit_callbacks):
    from training.registry.scoring import reward_model_load

    base, new, judge, snapshot, target = setup

    def no_second_generation(**_):
        raise AssertionError("the verdict must judge the batch's answers, not generate its own")

    monkeypatch.setattr("training.rl.comparison.generate", no_second_generation)
    job = _run(target, snapshot, owner, [(new, 1, SAMPLING), (base, 1, SAMPLING)], judge, django_capture_on_commit_callbacks)
    verdict = job.result["reward_model"]
    assert verdict["n"] == target.items.count() == job.result["items_created"]
    assert verdict["policy"] == "tiny-new T=1" and verdict["reference"] == "tiny-base T=1" and verdict["reward_model"] == "tiny-rm"
    assert verdict["kl_mean"] > 0  # two different networks

    # Score the imported items' own texts: the same wins, ties and losses, pair by pair.
    score = reward_model_load(judge)
    wins = ties = 0
    for item in target.items.prefetch_related("candidates"):
        by_model = {c.model_name: c.text for c in item.candidates.all()}
        mine, theirs = (float(s) for s in score([item.prompt] * 2, [by_model["tiny-new T=1"], by_model["tiny-base T=1"]]))
        wins += mine > theirs + 1e-6
        ties += abs(mine - theirs) <= 1e-6
    assert (verdict["wins"], verdict["ties"]) == (wins, ties)

    page = client_for(owner).get(f"/training/jobs/{job.pk}/").content.decode()
    assert "data-rm-verdict" in page and f"{verdict['win_rate']:.3f}" in page


@pytest.mark.slow
def test_a_policy_against_its_own_weights_is_an_even_match_at_no_kl(setup, owner, django_capture_on_commit_callbacks):
    base, _, judge, snapshot, target = setup
    twin = ModelArtifact.objects.create(name="twin", kind=ModelArtifact.Kind.CAUSAL_LM, source=ModelArtifact.Source.LOCAL, path=base.path)
    job = _run(target, snapshot, owner, [(twin, 1, SAMPLING), (base, 1, SAMPLING)], judge, django_capture_on_commit_callbacks)
    verdict = job.result["reward_model"]
    assert verdict["ties"] == verdict["n"] > 0 and verdict["win_rate"] == 0.5
    assert verdict["kl_mean"] == pytest.approx(0.0, abs=1e-4)
    assert Candidate.objects.filter(item__project=target).count() == 2 * verdict["n"]


@pytest.mark.slow
def test_with_several_policies_each_is_judged_against_the_last(setup, owner, make_project, django_capture_on_commit_callbacks):
    """A checkpoint batch: every policy's verdict and KL against the reference, the last one."""
    base, new, judge, snapshot, _ = setup
    twin = ModelArtifact.objects.create(name="twin", kind=ModelArtifact.Kind.CAUSAL_LM, source=ModelArtifact.Source.LOCAL, path=base.path)
    ranked = make_project(Kind.RANKING, slug="ranked", ranking_k=3)
    job = _run(ranked, snapshot, owner, [(new, 1, SAMPLING), (twin, 1, SAMPLING), (base, 1, SAMPLING)], judge,
               django_capture_on_commit_callbacks)
    by_policy = job.result["reward_model_by_policy"]
    assert set(by_policy) == {"tiny-new T=1", "twin T=1"}
    assert all(v["reference"] == "tiny-base T=1" and v["n"] == ranked.items.count() > 0 for v in by_policy.values())
    assert by_policy["twin T=1"]["kl_mean"] == pytest.approx(0.0, abs=1e-4) and by_policy["twin T=1"]["win_rate"] == 0.5
    assert by_policy["tiny-new T=1"]["kl_mean"] > 0.01
    assert job.result["reward_model"] == by_policy["tiny-new T=1"]


def test_it_refuses_a_verdict_that_is_not_one_answer_against_one(setup, owner, make_project):
    base, new, judge, snapshot, target = setup
    ranked = make_project(Kind.RANKING, slug="ranked", ranking_k=3)
    with pytest.raises(GenerationError, match=r"reward_model: .*1 \+ 2 answers per prompt \(give two or more policies, k=1 each\)"):
        generation_batch_create(project=ranked, snapshot=snapshot, policies=[(new, 1, SAMPLING), (base, 2, SAMPLING)], reward_model=judge)
    with pytest.raises(GenerationError, match="reward_model: tiny-base is .*, not a reward model"):
        generation_batch_create(project=target, snapshot=snapshot, policies=[(new, 1, SAMPLING), (base, 1, SAMPLING)], reward_model=base)
    assert not Job.objects.exists()


@pytest.mark.slow
def test_the_command_and_the_api_take_a_reward_model(setup, owner, api_for, django_capture_on_commit_callbacks):
    from io import StringIO

    from django.core.management import call_command

    base, new, judge, snapshot, target = setup
    new.snapshot, new.base_model = snapshot, base
    new.save()
    out = StringIO()
    call_command("generate_batch", "--project", "round-2", "--prompts", "demo:v1", "--policy", "tiny-new@1.0", "--policy",
                 "tiny-base@1.0", "--limit", "3", "--max-new-tokens", "4", "--reward-model", "tiny-rm", "--here", stdout=out)
    assert Job.objects.get().result["reward_model"]["n"] == 3
    body = {"project": "round-2", "prompts": "demo:v1", "limit": 2, "reward_model": "tiny-rm",
            "policies": [{"model": "tiny-new", "temperature": 0.7}, {"model": "tiny-base", "temperature": 0.7}]}
    res = api_for(owner).post(f"/api/training/models/{new.pk}/generation-batches/", body, format="json")
    assert res.status_code == 201, res.content
    assert res.json()["params"]["reward_model_name"] == "tiny-rm"
    body["reward_model"] = "tiny-base"
    res = api_for(owner).post(f"/api/training/models/{new.pk}/generation-batches/", body, format="json")
    assert res.status_code == 400 and "not a reward model" in res.content.decode()
