"""A batch that asks a policy for answers it already made (same sampling and seed, same prompts)
reads them back instead of generating again: the very answers a second generation would give,
in a fraction of the time. The loop asks for these all the time (the base and the previous
round's policy on the same held-out prompts, round after round)."""
import pytest

from annotation.kinds import Kind
from annotation.models import Candidate
from tests.training.conftest import preference_rows
from training.loop.batches import generation_batch_create
from training.loop.generation import Sampling
from training.loop.models import Job

SAMPLING = Sampling(temperature=1.0, max_new_tokens=6, seed=5)


@pytest.fixture
def setup(project, tiny_model, make_snapshot):
    base = tiny_model("tiny-base", seed=0)
    new = tiny_model("tiny-new", seed=3)
    return base, new, make_snapshot(project, preference_rows(6, seed=0), preference_rows(10, seed=1))


def _batch(make_project, slug, snapshot, owner, policies, capture):
    target = make_project(Kind.BINARY, slug=slug)
    with capture(execute=True):
        job = generation_batch_create(project=target, snapshot=snapshot, created_by=owner, policies=policies)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    return job


def _texts(job, name):
    rows = Candidate.objects.filter(item__project=job.project, model_name=name).order_by("item__external_id")
    return [(c.item.prompt, c.text) for c in rows.select_related("item")]


def _no_generation(monkeypatch):
    def refuse(**_):
        raise AssertionError("these answers were made already: they must be read back, not generated")

    monkeypatch.setattr("training.loop.generation.generate", refuse)


@pytest.mark.slow
def test_a_second_batch_reads_back_the_answers_a_policy_already_made(setup, make_project, owner, settings, monkeypatch,
                                                                     django_capture_on_commit_callbacks):
    base, new, snapshot = setup
    capture = django_capture_on_commit_callbacks
    first = _batch(make_project, "vs-base", snapshot, owner, [(new, 1, SAMPLING), (base, 1, SAMPLING)], capture)
    assert first.result["answers_reused"] == []

    # Regenerated from scratch: the answers are the same ones (what makes keeping them honest).
    kept = settings.ARTIFACT_ROOT / "answers"
    moved = kept.rename(settings.ARTIFACT_ROOT / "answers-aside")
    again = _batch(make_project, "vs-base-again", snapshot, owner, [(new, 1, SAMPLING), (base, 1, SAMPLING)], capture)
    assert _texts(again, "tiny-new T=1") == _texts(first, "tiny-new T=1")

    # Both policies' answers are on disk now: a batch pairing them otherwise generates nothing.
    _no_generation(monkeypatch)
    swapped = _batch(make_project, "swapped", snapshot, owner, [(base, 1, SAMPLING), (new, 1, SAMPLING)], capture)
    assert swapped.result["answers_reused"] == ["tiny-base T=1", "tiny-new T=1"]
    assert _texts(swapped, "tiny-new T=1") == _texts(first, "tiny-new T=1")
    assert _texts(swapped, "tiny-base T=1") == _texts(first, "tiny-base T=1")
    assert moved.is_dir()


@pytest.mark.slow
def test_another_seed_another_model_or_a_damaged_file_is_generated(setup, make_project, owner, settings, monkeypatch,
                                                                  django_capture_on_commit_callbacks):
    base, new, snapshot = setup
    capture = django_capture_on_commit_callbacks
    first = _batch(make_project, "first", snapshot, owner, [(new, 1, SAMPLING), (base, 1, SAMPLING)], capture)
    other_seed = Sampling(temperature=1.0, max_new_tokens=6, seed=6)
    second = _batch(make_project, "second", snapshot, owner, [(new, 1, other_seed), (base, 1, SAMPLING)], capture)
    assert second.result["answers_reused"] == ["tiny-base T=1"]
    assert _texts(second, "tiny-new T=1") != _texts(first, "tiny-new T=1")  # another seed, other answers

    for path in (settings.ARTIFACT_ROOT / "answers" / f"model-{base.pk}").glob("*.json"):
        path.write_text('[["half a fi')
    third = _batch(make_project, "third", snapshot, owner, [(new, 1, SAMPLING), (base, 1, SAMPLING)], capture)
    assert third.result["answers_reused"] == ["tiny-new T=1"]
    assert _texts(third, "tiny-base T=1") == _texts(first, "tiny-base T=1")  # made again, and kept again whole
    with monkeypatch.context() as upgraded:  # another transformers may sample other tokens from the same seed
        upgraded.setattr("transformers.__version__", "99.0.0")
        assert _batch(make_project, "upgraded", snapshot, owner, [(new, 1, SAMPLING), (base, 1, SAMPLING)],
                      capture).result["answers_reused"] == []
    _no_generation(monkeypatch)
    fourth = _batch(make_project, "fourth", snapshot, owner, [(new, 1, SAMPLING), (base, 1, SAMPLING)], capture)
    assert fourth.result["answers_reused"] == ["tiny-new T=1", "tiny-base T=1"]


@pytest.mark.slow
def test_the_job_page_says_which_answers_were_kept(setup, make_project, owner, client_for, django_capture_on_commit_callbacks):
    base, new, snapshot = setup
    capture = django_capture_on_commit_callbacks
    _batch(make_project, "first", snapshot, owner, [(new, 1, SAMPLING), (base, 1, SAMPLING)], capture)
    job = _batch(make_project, "second", snapshot, owner, [(new, 1, SAMPLING), (base, 1, SAMPLING)], capture)
    page = client_for(owner).get(f"/training/jobs/{job.pk}/")
    assert page.status_code == 200
    assert "Answers kept from an earlier batch" in page.content.decode() and "tiny-base T=1" in page.content.decode()
