"""The model leaderboard: Bradley–Terry on human comparisons, bootstrap intervals."""
from __future__ import annotations

import random

import pytest

from annotation.kinds import Kind
from annotation.quality.leaderboard import leaderboard_from_games, project_leaderboard
from annotation.models import Candidate
from tests.annotation.quality_factory import join, judge


def _name_models(items, names):
    for item in items:
        for position, name in enumerate(names):
            Candidate.objects.filter(item=item, position=position).update(model_name=name)


def _arena(project, add_items, raters, pairs_and_win_rates, per_pair=30):
    """Items pitting two models against each other; model a wins with the given probability."""
    rng = random.Random(3)
    for a, b, p_a in pairs_and_win_rates:
        items = add_items(project, per_pair, prefix=f"{a}-{b}")
        _name_models(items, [a, b])
        for item in items:
            rater = rng.choice(raters)
            judge(project, item, rater, {"winner": 0 if rng.random() < p_a else 1})


def test_it_ranks_the_model_that_wins_most_first(make_project, add_items, member, make_user):
    project = make_project(Kind.BINARY)
    other = make_user("rater2")
    join(project, other)
    _arena(project, add_items, [member, other], [("big", "small", 0.9), ("big", "mid", 0.8), ("mid", "small", 0.7)])
    rows = project_leaderboard(project=project)
    assert [r["model"] for r in rows] == ["big", "mid", "small"]
    assert [r["rank"] for r in rows] == [1, 2, 3]
    for row in rows:
        assert row["lower"] <= row["score"] <= row["upper"]
        assert row["upper"] - row["lower"] > 0  # a real interval, not a point
        assert row["games"] == 60
    # Scores sit around 1000 on the Elo-like scale.
    assert sum(r["score"] for r in rows) / 3 == pytest.approx(1000, abs=0.5)


def test_it_is_reproducible_and_the_interval_narrows_with_more_games():
    rng = random.Random(11)
    games = [("a", "b", False) if rng.random() < 0.7 else ("b", "a", False) for _ in range(200)]
    first = leaderboard_from_games(games)
    assert leaderboard_from_games(games) == first  # seeded bootstrap
    many = leaderboard_from_games(games * 20)
    width = lambda rows: rows[0]["upper"] - rows[0]["lower"]  # noqa: E731
    assert width(many) < width(first)
    assert first[0]["model"] == "a"
    # 70 % wins -> about 400 * log10(0.7 / 0.3) = 147 points apart.
    assert first[0]["score"] - first[1]["score"] == pytest.approx(147, abs=40)


def test_it_counts_a_tie_as_half_a_win_each(make_project, add_items, member):
    project = make_project(Kind.BINARY)
    items = add_items(project, 4)
    _name_models(items, ["x", "y"])
    for item, answer in zip(items, [0, 1, "tie", "tie"]):
        judge(project, item, member, {"winner": answer})
    rows = {r["model"]: r for r in project_leaderboard(project=project)}
    assert rows["x"]["ties"] == 2 and rows["x"]["wins"] == 1 and rows["x"]["games"] == 4
    assert rows["x"]["win_rate"] == 0.5
    assert rows["x"]["score"] == pytest.approx(rows["y"]["score"])


def test_it_uses_rankings_too_and_skips_unnamed_candidates(make_project, add_items, member):
    project = make_project(Kind.RANKING, ranking_k=3)
    items = add_items(project, 6)
    _name_models(items, ["gold-model", "", "bronze-model"])
    for item in items:
        judge(project, item, member, {"ranking": [[0], [1], [2]]})
    rows = project_leaderboard(project=project)
    assert [r["model"] for r in rows] == ["gold-model", "bronze-model"]
    assert rows[0]["wins"] == 6 and rows[1]["losses"] == 6


def test_it_is_empty_without_two_named_models(make_project, add_items, member):
    project = make_project(Kind.BINARY)
    items = add_items(project, 3)
    _name_models(items, ["same", "same"])
    for item in items:
        judge(project, item, member, {"winner": 0})
    assert project_leaderboard(project=project) == []


def test_it_serves_the_leaderboard_to_researchers_only(make_project, add_items, member, owner, researcher, outsider, api_for):
    project = make_project(Kind.BINARY)
    _arena(project, add_items, [member], [("big", "small", 0.9)], per_pair=20)
    url = f"/api/projects/{project.slug}/leaderboard/"
    for user in (researcher, owner):
        response = api_for(user).get(url)
        assert response.status_code == 200
        assert response.json()["models"][0]["model"] == "big"
    assert api_for(member).get(url).status_code == 403
    response = api_for(outsider).get(url)
    assert response.status_code == 404 and "models" not in response.json()
    assert api_for(None).get(url).status_code in (401, 403)
