"""AI–human agreement (annotation/quality/ai_agreement.py): kappa and raw agreement against the human
consensus and each rater with bootstrap intervals, the worst disagreements side by side, the
quality page and API for every role, and the AI-source bookkeeping of snapshots and their card."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from sklearn.metrics import cohen_kappa_score

from annotation.quality.ai_agreement import ai_human_agreement, compare
from annotation.exports import snapshot_create
from annotation.exports.build import snapshot_build
from annotation.kinds import Kind
from annotation.models import Judgment

pytestmark = pytest.mark.django_db


def human(project, item, rater, value):
    return Judgment.objects.create(project=project, item=item, rater=rater, kind=project.kind, source="human", value=value, display_order=[0, 1])


def ai(project, item, value, *, model="judge-lm", template="default@abc", rationale="P(candidate 0 better) = 0.9"):
    return Judgment.objects.create(project=project, item=item, rater=None, kind=project.kind, source="ai", value=value, ai_model=model, ai_template=template, rationale=rationale)


@pytest.fixture
def rated(make_project, add_items, make_user):
    """A binary project of 30 items: two raters who agree, and an AI judge that agrees on 24 and
    contradicts both raters on the last 6 (on item 29 it also has a tie)."""
    project = make_project(Kind.BINARY)
    items = add_items(project, 30)
    r1, r2 = make_user("alice"), make_user("bob")
    truth = [i % 2 for i in range(30)]
    for item, w in zip(items, truth):
        human(project, item, r1, {"winner": w})
        human(project, item, r2, {"winner": w})
    ai_answers = [w if i < 24 else 1 - w for i, w in enumerate(truth)]
    for item, w in zip(items, ai_answers):
        ai(project, item, {"winner": w})
    return project, items, truth, ai_answers


def test_it_measures_kappa_and_agreement_against_the_consensus_and_each_rater(rated):
    project, items, truth, ai_answers = rated
    figures = ai_human_agreement(project=project)
    (judge,) = figures["judges"]
    assert judge["ai_model"] == "judge-lm" and judge["ai_template"] == "default@abc" and judge["items_with_both"] == 30
    c = judge["vs_consensus"]
    assert c["units"] == 30 and c["agreement"] == 0.8
    assert c["kappa"] == pytest.approx(cohen_kappa_score([str(a) for a in ai_answers], [str(t) for t in truth]), abs=1e-3)
    lo, hi = c["kappa_ci"]
    assert lo < c["kappa"] < hi and 0.0 < hi - lo < 1.0
    assert c["agreement_ci"][0] < 0.8 < c["agreement_ci"][1]
    assert [r["username"] for r in judge["vs_raters"]] == ["alice", "bob"]
    assert all(r["agreement"] == 0.8 and r["units"] == 30 for r in judge["vs_raters"])
    # The six contradicted items come first in the side-by-side list, with both sides' answers.
    worst = figures["disagreements"]
    assert {row["external_id"] for row in worst} == {items[i].external_id for i in range(24, 30)}
    row = worst[0]
    assert len(row["candidates"]) == 2 and row["ai_value"] != row["human_values"][0]["value"]
    assert {h["rater"] for h in row["human_values"]} == {"alice", "bob"} and row["ai_rationale"].startswith("P(candidate 0")


def test_it_keeps_judges_and_templates_apart(rated):
    project, items, truth, _ = rated
    for item, w in zip(items, truth):
        ai(project, item, {"winner": w}, template="default@new")
    judges = {(j["ai_model"], j["ai_template"]): j for j in ai_human_agreement(project=project)["judges"]}
    assert judges[("judge-lm", "default@new")]["vs_consensus"]["agreement"] == 1.0
    assert judges[("judge-lm", "default@abc")]["vs_consensus"]["agreement"] == 0.8


def test_it_compares_rankings_pair_by_pair_and_ratings_by_their_good_bad_label(make_project, add_items, member):
    ranking = make_project(Kind.RANKING, ranking_k=3)
    (item,) = add_items(ranking, 1)
    human(ranking, item, member, {"ranking": [[0], [1], [2]]})
    ai(ranking, item, {"ranking": [[0], [2], [1]]})
    c = ai_human_agreement(project=ranking)["judges"][0]["vs_consensus"]
    assert c["units"] == 3 and c["agreement"] == pytest.approx(2 / 3, abs=1e-3)

    rating = make_project(Kind.RATING, rating_threshold=4)
    (item,) = add_items(rating, 1, candidates=2)
    human(rating, item, member, {"scores": [5, 2]})
    ai(rating, item, {"scores": [4, 3]})  # different scores, same good/bad labels
    assert ai_human_agreement(project=rating)["judges"][0]["vs_consensus"]["agreement"] == 1.0


def test_it_leaves_out_units_whose_raters_split_evenly(make_project, add_items, make_user):
    project = make_project(Kind.BINARY)
    (item,) = add_items(project, 1)
    human(project, item, make_user("x"), {"winner": 0})
    human(project, item, make_user("y"), {"winner": 1})
    ai(project, item, {"winner": 0})
    judge = ai_human_agreement(project=project)["judges"][0]
    assert judge["vs_consensus"]["units"] == 0 and len(judge["vs_raters"]) == 2


def test_its_kappa_matches_sklearn_and_is_undefined_without_variation():
    pairs = [(i, "a" if i % 3 else "b", "a" if i % 4 else "b") for i in range(40)]
    out = compare(pairs)
    assert out["kappa"] == pytest.approx(cohen_kappa_score([p[1] for p in pairs], [p[2] for p in pairs]), abs=1e-3)
    assert compare([(i, "a", "a") for i in range(10)])["kappa"] is None


@pytest.mark.parametrize("who, status", [("owner", 200), ("researcher", 200), ("member", 403), ("outsider", 404), (None, 401)])
def test_it_answers_the_api_by_role(rated, api_for, request, who, status):
    project = rated[0]
    user = request.getfixturevalue(who) if who else None
    response = api_for(user).get(f"/api/projects/{project.slug}/quality/ai/")
    assert response.status_code in ((status, 403) if status == 401 else (status,))
    if status == 200:
        body = response.json()
        assert body["judges"][0]["vs_consensus"]["agreement"] == 0.8 and len(body["disagreements"]) == 6


@pytest.mark.parametrize("who, status", [("owner", 200), ("researcher", 200), ("member", 403), ("outsider", 404)])
def test_it_shows_the_figures_on_the_quality_page(rated, client_for, request, who, status):
    project = rated[0]
    response = client_for(request.getfixturevalue(who)).get(f"/projects/{project.slug}/quality/")
    assert response.status_code == status
    if status == 200:
        html = response.content.decode()
        assert "AI judge against the raters" in html and "judge-lm" in html and "default@abc" in html
        assert "against alice" in html and "Where they disagree most" in html


def _build(project, **options):
    snapshot = snapshot_create(project=project, options=options, created_by=None, enqueue=False)
    return snapshot_build(snapshot_id=snapshot.id)


def test_it_counts_ai_rows_in_snapshots_only_when_asked_and_says_so_on_the_card(rated):
    project = rated[0]
    humans_only = _build(project, aggregation="none")
    manifest = humans_only.manifest["judgments"]
    assert manifest["per_source"] == {"human": 60} and manifest["preference_rows_by_source"] == {"human": 60}
    card = (Path(humans_only.path) / "README.md").read_text()
    assert "preference rows by source of their answer: human: 60" in card and "AI judge" not in card

    both = _build(project, aggregation="none", sources=["human", "ai"])
    stats = both.manifest["judgments"]
    assert stats["per_source"] == {"human": 60, "ai": 30} and stats["preference_rows_by_source"] == {"ai": 30, "human": 60}
    judgments = [json.loads(line) for split in ("train", "test") for line in (Path(both.path) / "judgments" / f"{split}.jsonl").read_text().splitlines()]
    ai_rows = [j for j in judgments if j["source"] == "ai"]
    assert len(ai_rows) == 30 and {j["ai_model"] for j in ai_rows} == {"judge-lm"}
    card = (Path(both.path) / "README.md").read_text()
    assert "- by source: ai: 30, human: 60" in card and "preference rows by source of their answer: ai: 30, human: 60" in card
    assert "AI judge `judge-lm` (template `default@abc`), 30 judgments" in card
    assert "raw agreement 0.8" in card and "Cohen's kappa" in card

    # Majority over human + AI: the six contradicted items are 2 humans against 1 AI, rows of mixed origin.
    mixed = _build(project, sources=["human", "ai"])
    assert mixed.manifest["judgments"]["preference_rows_by_source"] == {"ai+human": 30}


def test_it_counts_imported_labels_as_human_under_one_pseudo_rater(make_project, add_items):
    project = make_project(Kind.BINARY)
    items = add_items(project, 6)
    for i, item in enumerate(items):
        Judgment.objects.create(project=project, item=item, rater=None, kind="binary", source="import", value={"winner": 0})
        ai(project, item, {"winner": 0 if i < 3 else 1})
    judge = ai_human_agreement(project=project)["judges"][0]
    assert judge["vs_consensus"]["agreement"] == 0.5 and [r["username"] for r in judge["vs_raters"]] == ["(imported labels)"]
