"""`manage.py seed_demo`: demo accounts, one project per kind, model-written items, an attributes
project with judgments whose quality page shows figures; idempotent."""
from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from annotation.kinds import Kind
from annotation.management.commands.seed_demo import FIXTURE
from annotation.models import Candidate, Item, Judgment, Membership, Project, Role
from annotation.quality.question_figures import project_question_quality_compute

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
        sorted(Judgment.objects.values_list("project__slug", "item__external_id", "rater__username", "answers")),
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

    binary = Project.objects.get(slug="demo-binary")
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


def test_it_seeds_an_attributes_project_whose_quality_page_has_figures(client):
    seed()
    project = Project.objects.get(slug="demo-attributes")
    assert project.kind == Kind.BINARY and project.overlap == 2
    assert [(q["key"], q["type"], q["per"]) for q in project.questions] == [
        ("helpfulness", "scale", "response"),
        ("correctness", "scale", "response"),
        ("verbosity", "scale", "response"),
        ("harm", "labels", "response"),
    ]
    assert all([q["min"], q["max"]] == [0, 4] for q in project.questions[:3]) and not project.questions[3]["required"]
    judgments = Judgment.objects.filter(project=project)
    assert set(judgments.values_list("rater__username", flat=True)) == {"rater1", "rater2"}
    assert judgments.count() >= 24 and all(j.answers["helpfulness"] and j.answers["harm"] is not None for j in judgments)
    assert all(g.gold["answers"]["helpfulness"] for g in Item.objects.filter(project=project, is_gold=True))

    figures = {q["key"]: q for q in project_question_quality_compute(project=project)["questions"]}
    assert set(figures) == {"helpfulness", "correctness", "verbosity", "harm"}
    for key in ("helpfulness", "correctness", "verbosity"):
        assert figures[key]["pairable_units"] >= 10 and figures[key]["alpha"] is not None and figures[key]["alpha_ci"], key
        assert {r["username"] for r in figures[key]["rater_table"]} == {"rater1", "rater2"}
    assert figures["helpfulness"]["gold_answered"] >= 2 and figures["helpfulness"]["gold_accuracy"] == 1.0
    assert any(row["alpha"] is not None for row in figures["harm"]["labels"])

    client.post("/accounts/login/", {"username": "researcher", "password": "arbiter-demo"})
    html = client.get("/projects/demo-attributes/quality/").content.decode()
    assert 'id="questions"' in html and 'id="question-verbosity"' in html and html.count('class="question-rater-row"') == 8


def test_it_uses_realistic_prompts_and_responses_a_real_model_wrote():
    records = [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]
    assert len(records) >= 20 and FIXTURE.stat().st_size < 300_000
    chats = [r for r in records if isinstance(r["prompt"], list)]
    assert len(chats) >= 5 and any(len(r["prompt"]) >= 3 for r in chats)
    assert any("```" in r["responses"][0]["text"] or "```" in str(r["prompt"]) for r in records)  # code in prompts or answers
    models = {resp["model"] for r in records for resp in r["responses"]}
    assert all(m.startswith("SmolLM2-135M-Instruct (T=") for m in models) and len(models) == 4
    seed()
    chat_item = Item.objects.get(project__slug="demo-binary", external_id=chats[0]["id"])
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
