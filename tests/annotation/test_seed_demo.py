"""`manage.py seed_demo`: demo accounts, one project per kind, model-written items; idempotent."""
from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from annotation.kinds import Kind
from annotation.management.commands.seed_demo import FIXTURE
from annotation.models import Candidate, Item, Membership, Project, Role

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def snapshot() -> tuple:
    return (
        Project.objects.count(),
        Item.objects.count(),
        Candidate.objects.count(),
        Membership.objects.count(),
        sorted(Project.objects.values_list("slug", "kind", "overlap")),
    )


def test_it_seeds_one_project_of_each_kind_and_adds_nothing_the_second_time():
    output = seed()
    first = snapshot()
    again = seed()
    assert snapshot() == first
    assert "0 new item(s)" in again and "arbiter-demo" in output and "/accounts/login/" in output
    kinds = dict(Project.objects.values_list("kind", "slug"))
    assert set(kinds) == {Kind.BINARY, Kind.LIKERT, Kind.RANKING, Kind.RATING}

    binary = Project.objects.get(kind=Kind.BINARY)
    assert binary.overlap == 2 and binary.gold_rate == 0.1
    gold = Item.objects.filter(project=binary, is_gold=True)
    assert gold.count() >= 3
    assert {g.gold["winner"] for g in gold} == {0, 1}  # the right answer is not always on one side

    ranking = Project.objects.get(kind=Kind.RANKING)
    assert ranking.ranking_k == 4
    for item in Item.objects.filter(project=ranking).prefetch_related("candidates")[:10]:
        texts = [c.text for c in item.candidates.all()]
        assert len(texts) == 4 and len(set(texts)) == 4
    for project in Project.objects.all():
        assert project.instructions.startswith("## ")
        roles = dict(Membership.objects.filter(project=project).values_list("user__username", "role"))
        assert roles == {"manager": Role.MANAGER, "researcher": Role.RESEARCHER, "rater1": Role.RATER, "rater2": Role.RATER}


def test_it_uses_realistic_prompts_and_responses_a_real_model_wrote():
    records = [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]
    assert len(records) >= 20 and FIXTURE.stat().st_size < 300_000
    chats = [r for r in records if isinstance(r["prompt"], list)]
    assert len(chats) >= 5 and any(len(r["prompt"]) >= 3 for r in chats)
    assert any("```" in r["responses"][0]["text"] or "```" in str(r["prompt"]) for r in records)  # code in prompts or answers
    models = {resp["model"] for r in records for resp in r["responses"]}
    assert all(m.startswith("SmolLM2-135M-Instruct (T=") for m in models) and len(models) == 4
    seed()
    chat_item = Item.objects.get(project__kind=Kind.BINARY, external_id=chats[0]["id"])
    assert chat_item.is_chat and chat_item.prompt == chats[0]["prompt"]


def test_it_lets_the_demo_accounts_log_in_and_work(client):
    seed()
    for username in ("manager", "researcher", "rater1", "rater2", "admin"):
        response = client.post("/accounts/login/", {"username": username, "password": "arbiter-demo"})
        assert response.status_code == 302 and response["Location"] == "/", username
        listing = client.get("/").content.decode()
        assert "Demo: rank four responses" in listing
        client.post("/accounts/logout/")
    client.post("/accounts/login/", {"username": "manager", "password": "arbiter-demo"})
    assert client.get("/projects/new/").status_code == 200
    assert client.get("/projects/demo-binary/settings/").status_code == 200
    client.post("/accounts/logout/")
    client.post("/accounts/login/", {"username": "rater1", "password": "arbiter-demo"})
    assert client.get("/projects/new/").status_code == 403
    page = client.get("/projects/demo-binary/").content.decode()
    assert "Start labelling" in page and "<h2>Pick the better response</h2>" in page
    assert client.get("/projects/demo-binary/label/").status_code == 200
