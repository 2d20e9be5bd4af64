"""A snapshot of project A that also holds project B (extra_projects) is read only by users who may
read both (DESIGN.md: Roles). Walked through every snapshot route, browser and API, and a run's
results on that snapshot, as A's researcher and A's manager (neither on B), B's manager (not on A)
and the owner who manages both: only the owner (and staff) get a byte of B's prompts or
instructions; the others see that the snapshot exists and are told why its content is refused."""
from __future__ import annotations

import io
import tarfile

import pytest

from annotation.exports import snapshot_create
from annotation.exports.build import snapshot_build
from annotation.kinds import Kind
from annotation.models import Item, Judgment, Membership, Role
from training.models import ModelArtifact, TrainingRun

SECRET = "Bee-only question about the launch codes"
B_INSTRUCTIONS = "Bee-only instructions: judge the launch plan"
SECRETS = (SECRET.encode(), B_INSTRUCTIONS.encode())
A_TEXT = b"Question 0?"


@pytest.fixture
def shared(project, make_project, add_items, member, owner, researcher):
    """demo v1 holds demo (A) and bee (B), built by the owner (manager of both) through the real
    service. The researcher holds only A."""
    bee = make_project(Kind.BINARY, slug="bee", name="Project B", instructions=B_INSTRUCTIONS)
    Membership.objects.filter(project=bee, user=researcher).delete()
    for p in (project, bee):
        for i, item in enumerate(add_items(p, 4, prefix=p.slug)):
            if p == bee:
                Item.objects.filter(pk=item.pk).update(prompt=f"{SECRET} #{i}")
            Judgment.objects.create(project=p, item=item, rater=member, kind=Kind.BINARY, value={"winner": i % 2}, display_order=[0, 1])
    snapshot = snapshot_create(project=project, options={"test_share": 0}, created_by=owner, extra_projects=[bee], enqueue=False)
    snapshot = snapshot_build(snapshot_id=snapshot.id)
    assert snapshot.status == "ready", snapshot.error
    return snapshot


@pytest.fixture
def a_manager(make_user, project):
    user = make_user("a-manager")
    Membership.objects.create(project=project, user=user, role=Role.MANAGER)
    return user


@pytest.fixture
def b_manager(make_user, shared):
    user = make_user("b-manager")
    Membership.objects.create(project=shared.extra_projects.get(), user=user, role=Role.MANAGER)
    return user


def content(response) -> bytes:
    """Everything the user receives, an archive unpacked (its members are gzip-compressed)."""
    data = b"".join(response.streaming_content) if response.streaming else response.content
    if response.get("Content-Type") == "application/gzip":
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            return b"".join(tar.extractfile(m).read() for m in tar.getmembers())
    return data


def routes(snapshot) -> list[tuple[str, str]]:
    """(kind, url) of every route that shows the snapshot or serves what it holds."""
    files = [*snapshot.manifest["files"], "manifest.json"]
    pages = ["/projects/demo/datasets/", "/projects/demo/datasets/v1/", "/projects/demo/datasets/v1/status.json",
             "/projects/demo/datasets/v1/download/", *(f"/projects/demo/datasets/v1/files/{name}" for name in files)]
    api = ["/api/projects/demo/datasets/", "/api/projects/demo/datasets/1/", "/api/projects/demo/datasets/1/archive/",
           *(f"/api/projects/demo/datasets/1/files/{name}" for name in files)]
    return [("page", url) for url in pages] + [("api", url) for url in api]


CONTENT = ("/v1/", "/1/", "download/", "archive/", "/files/")  # routes that serve what the snapshot holds


def walk(client_for, api_for, user, snapshot) -> dict[str, tuple[int, bytes]]:
    client, api = client_for(user), api_for(user)
    return {url: ((r := (client if kind == "page" else api).get(url)).status_code, content(r)) for kind, url in routes(snapshot)}


def test_it_serves_every_snapshot_route_in_full_to_a_user_who_reads_both_projects(shared, client_for, api_for, owner, staff):
    for user in (owner, staff):
        seen = walk(client_for, api_for, user, shared)
        assert all(code == 200 for code, _ in seen.values()), {url: code for url, (code, _) in seen.items()}
        assert SECRET.encode() in seen["/projects/demo/datasets/v1/files/preference/train.jsonl"][1]
        assert SECRET.encode() in seen["/api/projects/demo/datasets/1/files/preference/train.jsonl"][1]
        assert SECRET.encode() in seen["/projects/demo/datasets/v1/download/"][1]
        assert SECRET.encode() in seen["/api/projects/demo/datasets/1/archive/"][1]
        assert B_INSTRUCTIONS.encode() in seen["/projects/demo/datasets/v1/"][1]  # the card quotes B's instructions
        assert B_INSTRUCTIONS.encode() in seen["/projects/demo/datasets/v1/files/README.md"][1]
        assert b"Holds a project you may not read" not in seen["/projects/demo/datasets/"][1]
        listing = api_for(user).get("/api/projects/demo/datasets/").json()["results"][0]
        assert listing["readable"] is True and "preference/train.jsonl" in listing["files"] and listing["archive_url"]


@pytest.mark.parametrize("who", ["researcher", "a_manager"])
def test_it_shows_a_user_of_a_only_that_the_snapshot_exists_and_refuses_its_content(shared, client_for, api_for, request, who):
    user = request.getfixturevalue(who)
    seen = walk(client_for, api_for, user, shared)
    for url, (code, body) in seen.items():
        assert not any(secret in body for secret in SECRETS), (who, url)
        assert A_TEXT not in body, (who, url)  # not even A's half of a file
        if any(part in url for part in CONTENT) and not url.endswith("status.json"):
            assert code == 403, (who, url, code)
            assert b"holds the data of Project B, which you may not read" in body, (who, url, body[:300])
        else:
            assert code == 200, (who, url, code)
    # The list names the snapshot and says why there is nothing to download; the poller still works.
    listing = seen["/projects/demo/datasets/"][1].decode()
    assert 'id="snapshot-v1"' in listing and "+bee" in listing and "Holds a project you may not read" in listing
    assert "/datasets/v1/download/" not in listing and 'href="/projects/demo/datasets/v1/"' not in listing
    assert client_for(user).get("/projects/demo/datasets/v1/status.json").json()["status"] == "ready"
    api_listing = api_for(user).get("/api/projects/demo/datasets/").json()["results"][0]
    assert api_listing["version"] == 1 and api_listing["extra_projects"] == ["bee"]
    assert api_listing["readable"] is False and api_listing["files"] == {} and api_listing["archive_url"] is None
    # The 403 page links back to A.
    assert b'href="/projects/demo/"' in seen["/projects/demo/datasets/v1/"][1]


def test_it_gives_b_s_manager_nothing_of_a_s_snapshot(shared, client_for, api_for, b_manager):
    """Not on A: every route of A's snapshot is a 404, as for any outsider."""
    for url, (code, body) in walk(client_for, api_for, b_manager, shared).items():
        assert code == 404, (url, code)
        assert A_TEXT not in body and SECRET.encode() not in body, url


def test_it_lets_a_user_of_a_read_the_snapshot_once_they_may_read_b(shared, client_for, researcher):
    url = "/projects/demo/datasets/v1/files/preference/train.jsonl"
    assert client_for(researcher).get(url).status_code == 403
    bee = shared.extra_projects.get()
    Membership.objects.create(project=bee, user=researcher, role=Role.RATER)  # a rater of B reads nothing of it
    assert client_for(researcher).get(url).status_code == 403
    Membership.objects.filter(project=bee, user=researcher).update(role=Role.RESEARCHER)
    assert SECRET.encode() in content(client_for(researcher).get(url))


def test_it_hides_a_run_s_results_on_the_snapshot_by_the_same_rule(shared, project, client_for, api_for, owner, researcher, a_manager):
    base = ModelArtifact.objects.create(name="smol", kind=ModelArtifact.Kind.CAUSAL_LM, source=ModelArtifact.Source.GGUF, path="models/smol")
    run = TrainingRun.objects.create(project=project, snapshot=shared, base_model=base, method="dpo", status="succeeded",
                                     result={"test": {"accuracy": 0.75}, "samples": [{"prompt": SECRET, "policy": "p", "reference": "r"}]})
    urls = [f"/training/runs/{run.pk}/", f"/training/runs/{run.pk}/samples/"]
    assert all(SECRET.encode() in client_for(owner).get(url).content for url in urls[1:])
    assert api_for(owner).get(f"/api/training/runs/{run.pk}/").json()["result"]["samples"][0]["prompt"] == SECRET
    for user in (researcher, a_manager):
        page = client_for(user).get(urls[0])
        assert page.status_code == 200 and b"data-results-hidden" in page.content and SECRET.encode() not in page.content
        assert client_for(user).get(urls[1]).status_code == 403
        assert api_for(user).get(f"/api/training/runs/{run.pk}/").json()["result"] is None


def test_it_refuses_the_snapshot_as_prompts_for_an_evaluation_or_a_generation_batch(shared, project, api_for, owner, a_manager):
    """Its prompts would show in the job's samples, or become items that A's raters see."""
    from training.models import Job

    base = ModelArtifact.objects.create(name="smol", kind=ModelArtifact.Kind.CAUSAL_LM, source=ModelArtifact.Source.GGUF, path="models/smol")
    evaluation, batch = f"/api/training/models/{base.pk}/evaluations/", f"/api/training/models/{base.pk}/generation-batches/"
    for url, body, lacks in ((evaluation, {"prompts": "demo:v1"}, "reward_model"), (batch, {"project": "demo", "prompts": "demo:v1"}, "k")):
        refused = api_for(a_manager).post(url, body, format="json")
        assert refused.status_code == 403 and "holds the data of Project B" in refused.json()["detail"], refused.content
        # The owner reads both: past the snapshot, to the next thing the request lacks.
        passed = api_for(owner).post(url, body, format="json")
        assert passed.status_code == 400 and list(passed.json()) == [lacks], passed.content
    assert not Job.objects.exists()


def test_it_hides_an_evaluation_s_results_on_the_snapshot_by_the_same_rule(shared, project, client_for, api_for, owner, researcher, a_manager):
    """The owner (reads both) may evaluate on the snapshot; the job then belongs to A, whose
    researcher and manager must not read B's prompts in its samples, nor its win rate."""
    from training.models import Job

    policy = ModelArtifact.objects.create(name="smol", kind=ModelArtifact.Kind.CAUSAL_LM, source=ModelArtifact.Source.GGUF, path="models/smol")
    job = Job.objects.create(kind=Job.Kind.EVALUATION, policy=policy, project=project, status="succeeded", created_by=owner,
                             params={"prompts": {"snapshot": shared.pk, "split": "train", "label": "demo v1 train split"}},
                             result={"n": 4, "win_rate": 0.75, "policy": "smol", "reference": "ref", "reward_model": "rm",
                                     "samples": [{"prompt": SECRET, "policy": "p", "reference": "r"}]})
    page, api, listing = f"/training/jobs/{job.pk}/", f"/api/training/jobs/{job.pk}/", f"/api/training/models/{policy.pk}/jobs/"
    assert SECRET.encode() in client_for(owner).get(page).content
    assert api_for(owner).get(api).json()["result"]["samples"][0]["prompt"] == SECRET
    for user in (researcher, a_manager):
        shown = client_for(user).get(page)
        assert shown.status_code == 200 and SECRET.encode() not in shown.content and b"data-win-rate" not in shown.content
        assert api_for(user).get(api).json()["result"] == {}
        assert [row["result"] for row in api_for(user).get(listing).json()] == [{}]
    cancelled = api_for(a_manager).post(f"/api/training/jobs/{job.pk}/cancel/")
    assert cancelled.status_code == 200 and SECRET not in cancelled.content.decode()
    job.refresh_from_db()
    assert job.result["samples"][0]["prompt"] == SECRET  # hidden from them, not erased
