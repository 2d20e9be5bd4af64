import pytest
from django.core.management import CommandError, call_command

from annotation.assignment import lease_next
from annotation.judgments import judgment_submit
from annotation.kinds import Kind
from annotation.models import Candidate
from tests.training.conftest import preference_rows
from training.loop.batches import candidate_name, generation_batch_create, head_to_head
from training.loop.generation import GenerationError, Sampling, prompts_from_snapshot
from training.loop.models import Job
from training.core.paths import artifact_path


@pytest.fixture
def policies(tiny_model):
    base = tiny_model("tiny-base", seed=0)
    other = tiny_model("tiny-new", seed=3)
    return base, other


@pytest.fixture
def snap(project, make_snapshot):
    return make_snapshot(project, preference_rows(6, seed=0), preference_rows(10, seed=1))


def test_it_reads_distinct_prompts_of_a_split_and_names_a_bad_line(snap, tmp_path):
    prompts = prompts_from_snapshot(folder=artifact_path(snap.path))
    assert prompts == list(dict.fromkeys(r["prompt"] for r in preference_rows(10, seed=1)))
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "test.jsonl").write_text('{"prompt": "hi"}\n{"nope": 1}\n')
    with pytest.raises(GenerationError, match=r"test.jsonl:2: field 'prompt' is missing"):
        prompts_from_snapshot(folder=tmp_path)


def test_it_prefers_the_prompts_format_when_the_snapshot_has_it(tmp_path):
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "test.jsonl").write_text('{"prompt": [{"role": "user", "content": "hi"}]}\n')
    assert prompts_from_snapshot(folder=tmp_path) == [[{"role": "user", "content": "hi"}]]


@pytest.mark.slow
def test_it_samples_k_answers_at_a_temperature_reproducibly(policies):
    from training.loop.generation import generate, policy_load

    net, tok = policy_load(policies[0])
    prompts = ["question about apples", [{"role": "user", "content": "question about trains"}]]
    a = generate(net=net, tokenizer=tok, prompts=prompts, n=3, sampling=Sampling(temperature=1.0, max_new_tokens=5, seed=7))
    b = generate(net=net, tokenizer=tok, prompts=prompts, n=3, sampling=Sampling(temperature=1.0, max_new_tokens=5, seed=7))
    assert [len(x) for x in a] == [3, 3]
    assert [[s["text"] for s in x] for x in a] == [[s["text"] for s in x] for x in b]
    assert all(len(s["response_ids"]) <= 5 for x in a for s in x)
    greedy = generate(net=net, tokenizer=tok, prompts=prompts[:1], n=2, sampling=Sampling(temperature=0, max_new_tokens=5))
    assert greedy[0][0]["text"] == greedy[0][1]["text"]


def test_it_refuses_a_batch_that_does_not_fit_the_project(project, policies, snap):
    base, new = policies
    with pytest.raises(GenerationError, match="binary project needs 2 answers per item; this batch makes 3"):
        generation_batch_create(project=project, policies=[(new, 2, Sampling()), (base, 1, Sampling())], snapshot=snap)
    with pytest.raises(GenerationError, match="appears twice"):
        generation_batch_create(project=project, policies=[(new, 1, Sampling()), (new, 1, Sampling())], snapshot=snap)
    assert not Job.objects.exists()


@pytest.mark.slow
def test_it_sends_answers_to_raters_and_reads_their_verdict(make_project, project, policies, snap, owner, member,
                                                           django_capture_on_commit_callbacks):
    base, new = policies
    target = make_project(Kind.BINARY, slug="round-2")
    with django_capture_on_commit_callbacks(execute=True):
        job = generation_batch_create(project=target, snapshot=snap, created_by=owner, policies=[
            (new, 1, Sampling(temperature=0.7, max_new_tokens=6)), (base, 1, Sampling(temperature=0.7, max_new_tokens=6))])
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    n_prompts = len(prompts_from_snapshot(folder=artifact_path(snap.path)))
    assert job.result["items_created"] == n_prompts == target.items.count() and job.done == job.total
    cand = Candidate.objects.filter(item__project=target, position=0).first()
    assert cand.model_name == "tiny-new T=0.7" and cand.metadata["temperature"] == 0.7
    assert cand.metadata["max_new_tokens"] == 6 and cand.metadata["model_id"] == new.pk
    assert job.import_batch.items_created == n_prompts

    # Run again (a redelivered message): the row says it is done; nothing is imported twice.
    from training.loop.jobs import job_execute
    assert job_execute(job_id=job.pk, worker_name="again") == "skipped"
    Job.objects.filter(pk=job.pk).update(status=Job.Status.QUEUED)
    assert job_execute(job_id=job.pk, worker_name="again") == "succeeded"
    assert target.items.count() == n_prompts and Job.objects.get(pk=job.pk).result["items_skipped"] == n_prompts

    # The rater always picks the new policy: the human win rate says so.
    while (a := lease_next(project=target, rater=member)) is not None:
        pos = next(c.position for c in a.item.candidates.all() if c.model_name == "tiny-new T=0.7")
        judgment_submit(assignment=a, rater=member, value={"winner": pos}, duration_ms=1)
    verdict = head_to_head(project=target, a=candidate_name("tiny-new", 0.7), b=candidate_name("tiny-base", 0.7))
    assert verdict["n"] == n_prompts and verdict["win_rate"] == 1.0 and verdict["ci_low"] > 0.5


@pytest.mark.slow
def test_it_generates_a_batch_from_the_command_line(make_project, policies, snap):
    from io import StringIO

    target = make_project(Kind.RANKING, slug="ranked", ranking_k=4)
    out = StringIO()
    call_command("generate_batch", "--project", "ranked", "--prompts", "demo:latest", "--policy", "tiny-new@0.3x2",
                 "--policy", "tiny-new@1.2x2", "--limit", "3", "--max-new-tokens", "4", "--here", stdout=out)
    assert "3 items imported into ranked" in out.getvalue()
    names = sorted(set(Candidate.objects.filter(item__project=target).values_list("model_name", flat=True)))
    assert names == ["tiny-new T=0.3", "tiny-new T=1.2"]


def test_it_names_a_bad_policy_spec(project, policies, snap):
    with pytest.raises(CommandError, match="--policy: no registered model 'ghost'"):
        call_command("generate_batch", "--project", "demo", "--prompts", "demo:v1", "--policy", "ghost@0.7")
    with pytest.raises(CommandError, match="binary project needs 2"):
        call_command("generate_batch", "--project", "demo", "--prompts", "demo:v1", "--policy", "tiny-new@0.7")


# --- the page and the API: owner (manager), member (rater), outsider ---------------------------

@pytest.fixture
def page_policy(policies, snap):
    base, new = policies
    new.snapshot, new.base_model = snap, base
    new.save()
    return new


@pytest.mark.parametrize("who, code", [("owner", 201), ("member", 403), ("outsider", 404)])
def test_it_lets_only_a_manager_of_the_target_send_a_batch(page_policy, make_project, api_for, request, who, code):
    make_project(Kind.BINARY, slug="round-2")
    body = {"project": "round-2", "prompts": "demo:v1", "limit": 5,
            "policies": [{"model": "tiny-new", "temperature": 0.7}, {"model": "tiny-base", "temperature": 1.0}]}
    res = api_for(request.getfixturevalue(who)).post(f"/api/training/models/{page_policy.pk}/generation-batches/", body, format="json")
    assert res.status_code == code, res.content
    assert Job.objects.count() == (1 if code == 201 else 0)
    if code == 201:
        assert [p["candidate_name"] for p in res.json()["params"]["policies"]] == ["tiny-new T=0.7", "tiny-base T=1"]
        assert res.json()["leaderboard_url"] == "/projects/round-2/quality/#leaderboard"


def test_it_refuses_a_target_the_manager_does_not_manage(page_policy, make_project, api_for, owner, member):
    from annotation.models import Membership, Role

    other = make_project(Kind.BINARY, slug="elsewhere")
    Membership.objects.filter(project=other, user=owner).update(role=Role.RESEARCHER)
    res = api_for(owner).post(f"/api/training/models/{page_policy.pk}/generation-batches/",
                              {"project": "elsewhere", "prompts": "demo:v1", "policies": [{"model": "tiny-new"}, {"model": "tiny-base"}]}, format="json")
    assert res.status_code == 403 and not Job.objects.exists()


def test_it_sends_a_batch_from_the_policys_page_and_links_the_leaderboard(page_policy, make_project, client_for, owner, member, outsider):
    make_project(Kind.BINARY, slug="round-2")
    data = {"project": "round-2", "prompts": "demo:v1", "policies": "tiny-new@0.7\ntiny-base@1.0 x1", "limit": 3}
    assert client_for(outsider).post(f"/training/models/{page_policy.pk}/generate/", data).status_code == 404
    res = client_for(owner).post(f"/training/models/{page_policy.pk}/generate/", data)
    job = Job.objects.get()
    assert res.status_code == 302 and job.kind == Job.Kind.GENERATION
    Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED, result={"items_created": 3, "items_skipped": 0, "prompts": 3})
    html = client_for(owner).get(f"/training/models/{page_policy.pk}/").content.decode()
    assert "/projects/round-2/quality/#leaderboard" in html and "not judged yet" in html
    browser = client_for(owner)
    bad = browser.post(f"/training/models/{page_policy.pk}/generate/", {**data, "policies": "tiny-new@hot"})
    assert bad.status_code == 302
    page = browser.get(bad["Location"]).content.decode()
    assert "policies line 1.temperature" in page and Job.objects.count() == 1


def test_it_leaves_out_a_prompt_with_an_empty_answer_and_counts_it():
    """A policy that ends an answer at once must not sink the whole batch (the importer refuses
    an empty response): that prompt is left out and the empty answers are counted per policy."""
    from training.loop.batches import batch_records, batch_summary

    specs = [{"model": 1, "model_name": "new", "candidate_name": "new T=0.7", "k": 1, "sampling": {"temperature": 0.7}},
             {"model": 2, "model_name": "base", "candidate_name": "base T=0.7", "k": 1, "sampling": {"temperature": 0.7}}]

    def answer(text):
        return [{"text": text, "response_ids": [5] * len(text), "finished": True}]

    answers = {"new T=0.7": [answer("fine"), answer(""), answer("  ")], "base T=0.7": [answer("a"), answer("b"), answer("c")]}
    records, empty = batch_records(job_id=7, prompts=["p0", "p1", "p2"], answers=answers, specs=specs, source="s")
    assert [r["id"] for r in records] == ["gen7-00000"] and empty == {"new T=0.7": 2, "base T=0.7": 0}
    line = batch_summary({"prompts": 3, "items_created": 1, "items_skipped": 0, "models": list(answers),
                          "prompts_left_out": 2, "empty_answers": empty}, "round-2")
    assert "2 prompts left out for an empty answer (new T=0.7: 2 empty)" in line
