import pytest

from annotation import kinds
from annotation.kinds import Comparison, InvalidValue, Kind
from annotation.models import Project


def _project(kind, **kw):
    return Project(kind=kind, slug="x", name="x", **kw)


def test_it_turns_a_ranking_into_all_pairs_with_rank_distance():
    pairs = kinds.comparisons(Kind.RANKING, {"ranking": [[2], [0], [1]]})
    assert set(pairs) == {Comparison(2, 0, 1), Comparison(2, 1, 2), Comparison(0, 1, 1)}


def test_it_gives_no_pair_for_a_tie_or_both_bad():
    assert kinds.comparisons(Kind.BINARY, {"winner": "tie"}) == []
    assert kinds.comparisons(Kind.BINARY, {"winner": "both_bad"}) == []
    assert kinds.unpaired_labels(Kind.BINARY, {"winner": "both_bad"}) == [(0, False), (1, False)]


def test_it_pairs_ratings_whose_scores_differ():
    pairs = kinds.comparisons(Kind.RATING, {"scores": [5, 2, 5]})
    assert set(pairs) == {Comparison(0, 1, 3), Comparison(2, 1, 3)}
    assert kinds.unpaired_labels(Kind.RATING, {"scores": [5, 2, 5]}, rating_threshold=4) == [(0, True), (1, False), (2, True)]


def test_it_rejects_answers_the_project_does_not_allow():
    with pytest.raises(InvalidValue, match="ties"):
        kinds.validate_value(_project(Kind.BINARY, allow_tie=False), {"winner": "tie"}, 2)
    with pytest.raises(InvalidValue, match="strength"):
        kinds.validate_value(_project(Kind.LIKERT, likert_points=7), {"winner": 0, "strength": 4}, 2)
    with pytest.raises(InvalidValue, match="exactly once"):
        kinds.validate_value(_project(Kind.RANKING, ranking_k=3), {"ranking": [[0], [0], [1]]}, 3)
    with pytest.raises(InvalidValue, match="ties in a ranking"):
        kinds.validate_value(_project(Kind.RANKING, ranking_k=3), {"ranking": [[0, 1], [2]]}, 3)
    with pytest.raises(InvalidValue, match="between 1 and 5"):
        kinds.validate_value(_project(Kind.RATING), {"scores": [6]}, 1)


def test_it_reports_likert_strength_as_the_margin():
    value = kinds.validate_value(_project(Kind.LIKERT, likert_points=7), {"winner": 1, "strength": 3}, 2)
    assert kinds.comparisons(Kind.LIKERT, value) == [Comparison(1, 0, 3)]


def test_it_checks_gold_rankings_by_their_top_tier():
    gold = {"ranking": [[2], [0], [1]]}
    assert kinds.gold_matches(Kind.RANKING, gold, {"ranking": [[2], [1], [0]]})
    assert not kinds.gold_matches(Kind.RANKING, gold, {"ranking": [[0], [2], [1]]})
    assert not kinds.gold_matches(Kind.RANKING, {}, {"ranking": [[0], [1]]})
