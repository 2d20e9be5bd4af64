"""Agreement statistics on small hand-computed and textbook cases."""
from __future__ import annotations

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from annotation.quality import agreement
from annotation.kinds import Kind
from annotation.quality.figures import project_quality_compute
from tests.annotation.quality_factory import join, judge

NAN = np.nan

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the 4 observers x 12 units
# example with missing values: nominal alpha = 0.743, ordinal alpha = 0.815.
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
]

# Fleiss (1971) as worked on Wikipedia: 10 subjects, 14 raters, 5 categories; kappa = 0.210.
FLEISS_WIKIPEDIA = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def _rating_cells(matrix):
    """Raters x units scores as one-candidate rating judgments (unit = item)."""
    units, raters, values = [], [], []
    for r, row in enumerate(matrix):
        for u, score in enumerate(row):
            if not np.isnan(score):
                units.append(u)
                raters.append(r)
                values.append({"scores": [int(score)]})
    return agreement.cells_from_values(Kind.RATING, units, raters, values, rating_min=1, rating_max=5)


def test_it_matches_krippendorffs_textbook_example():
    cells = _rating_cells(KRIPPENDORFF_2011)
    counts = agreement.value_counts(cells)
    assert agreement.krippendorff_alpha(counts, "nominal") == pytest.approx(0.743, abs=5e-4)
    assert agreement.krippendorff_alpha(counts, "ordinal") == pytest.approx(0.815, abs=5e-4)
    assert counts.shape[0] == 11  # unit 12 has a single value and cannot be paired


def test_it_matches_the_fleiss_kappa_worked_example():
    assert agreement.fleiss_kappa(np.array(FLEISS_WIKIPEDIA)) == pytest.approx(0.210, abs=5e-4)


def test_it_gives_fleiss_kappa_1_for_unanimous_units_and_none_when_undefined():
    assert agreement.fleiss_kappa(np.array([[3, 0], [0, 3], [3, 0]])) == pytest.approx(1.0)
    assert agreement.fleiss_kappa(np.array([[3, 0], [3, 0]])) is None  # one category only: chance agreement is 1


@pytest.mark.parametrize("level", ["nominal", "ordinal"])
def test_it_matches_sklearn_cohen_kappa_for_every_rater_pair(level):
    rng = np.random.default_rng(7)
    n_units, n_raters = 60, 4
    truth = rng.integers(0, 5, n_units)
    matrix = np.where(rng.random((n_raters, n_units)) < 0.7, truth, rng.integers(0, 5, (n_raters, n_units))).astype(float)
    matrix[rng.random((n_raters, n_units)) < 0.2] = NAN  # not every rater judged every unit
    cells = _rating_cells(matrix + 1)
    cells.level = level
    pairs = agreement.pairwise_cohen_kappa(cells, min_shared=5)
    assert len(pairs.kappa) == n_raters * (n_raters - 1) // 2
    for a, b, shared, kappa in zip(pairs.rater_a, pairs.rater_b, pairs.shared, pairs.kappa):
        both = ~np.isnan(matrix[a]) & ~np.isnan(matrix[b])
        assert shared == both.sum()
        expected = cohen_kappa_score(matrix[a][both], matrix[b][both], weights=None if level == "nominal" else "linear", labels=list(range(5)))
        assert kappa == pytest.approx(expected)


def test_it_finds_each_raters_agreement_with_the_majority_of_the_others():
    # Raters 0-2 always agree; rater 3 always says the opposite.
    units, raters, values = [], [], []
    for u in range(6):
        answer = u % 2
        for r in range(4):
            units.append(u)
            raters.append(r)
            values.append({"winner": answer if r < 3 else 1 - answer})
    cells = agreement.cells_from_values(Kind.BINARY, units, raters, values)
    has, agrees = agreement.consensus_agreement(cells)
    assert has.all()
    per_rater = [agrees[cells.rater == r].mean() for r in range(4)]
    assert per_rater == [1.0, 1.0, 1.0, 0.0]


def test_it_gives_no_consensus_when_the_others_split_evenly():
    cells = agreement.cells_from_values(Kind.BINARY, [1, 1, 1], [0, 1, 2], [{"winner": 0}, {"winner": 0}, {"winner": 1}])
    has, agrees = agreement.consensus_agreement(cells)
    # Rater 0's others are {0, 1}: split, no consensus. Rater 2's others both say 0: disagrees.
    assert has.tolist() == [False, False, True]
    assert agrees.tolist() == [False, False, False]


def test_it_orients_likert_answers_by_candidate_not_by_screen_side():
    # Two raters saw the cards in opposite order and both said "candidate 1 much better".
    values = [{"winner": 1, "strength": 3}, {"winner": 1, "strength": 3}, {"winner": 0, "strength": 1}, {"winner": 0, "strength": 1}]
    cells = agreement.cells_from_values(Kind.LIKERT, [1, 1, 2, 2], [0, 1, 0, 1], values, likert_points=7)
    assert cells.value.tolist() == [6, 6, 2, 2]  # +3 and -1 on a -3..+3 scale
    assert agreement.krippendorff_alpha(agreement.value_counts(cells), "ordinal") == pytest.approx(1.0)


def test_it_weighs_near_misses_less_on_ordinal_scales():
    # Same pattern of disagreement, once by one scale step, once by five.
    near = agreement.cells_from_values(
        Kind.LIKERT, [1, 1, 2, 2, 3, 3], [0, 1] * 3, [{"winner": 1, "strength": 3}, {"winner": 1, "strength": 2}, {"winner": 0, "strength": 3}, {"winner": 0, "strength": 3}, {"winner": "tie"}, {"winner": "tie"}]
    )
    far = agreement.cells_from_values(
        Kind.LIKERT, [1, 1, 2, 2, 3, 3], [0, 1] * 3, [{"winner": 1, "strength": 3}, {"winner": 0, "strength": 2}, {"winner": 0, "strength": 3}, {"winner": 0, "strength": 3}, {"winner": "tie"}, {"winner": "tie"}]
    )
    assert agreement.krippendorff_alpha(agreement.value_counts(near), "ordinal") > agreement.krippendorff_alpha(agreement.value_counts(far), "ordinal")


def test_it_rates_rankings_per_candidate_rank():
    same = [{"ranking": [[2], [0], [1]]}, {"ranking": [[2], [0], [1]]}]
    cells = agreement.cells_from_values(Kind.RANKING, [5, 5], [0, 1], same, ranking_k=3)
    assert cells.n_units == 3 and cells.level == "ordinal"
    assert agreement.krippendorff_alpha(agreement.value_counts(cells), "ordinal") == pytest.approx(1.0)


def test_it_counts_picks_of_the_first_card_from_the_on_screen_order():
    values = [{"winner": 0}, {"winner": 0}, {"winner": 1}, {"winner": "tie"}]
    orders = [[0, 1], [1, 0], [1, 0], [0, 1]]
    counted, first = agreement.first_card_picks(Kind.BINARY, values, orders)
    assert counted.tolist() == [True, True, True, False]
    assert first.tolist() == [True, False, True, False]


def test_it_counts_labelling_time_without_breaks():
    # Three judgments 30 s apart, an hour's break, two more 30 s apart; a judgment takes 20 s.
    times = np.array([0, 30, 60, 3660, 3690], dtype=float)
    # Working gaps 30 + 30 + 30, plus one typical judgment to open each of the two sessions.
    assert agreement.active_seconds(times, 20.0) == pytest.approx(90 + 2 * 20)


# --- the same, end to end through the database --------------------------------------------------


def test_it_gives_alpha_1_when_two_raters_agree_on_everything(make_project, add_items, member, make_user):
    project = make_project(Kind.BINARY)
    other = make_user("rater2")
    join(project, other)
    answers = [0, 1, 1, 0, "tie", 1, 0, 0, 1, 1, 0, "both_bad"]
    for item, answer in zip(add_items(project, len(answers)), answers):
        for rater in (member, other):
            judge(project, item, rater, {"winner": answer})
    summary = project_quality_compute(project=project)["summary"]
    assert summary["alpha"] == pytest.approx(1.0)
    assert summary["fleiss_kappa"] == pytest.approx(1.0)
    assert summary["mean_cohen_kappa"] == pytest.approx(1.0)
    assert summary["consensus_agreement"] == pytest.approx(1.0)
    assert summary["level"] == "nominal" and summary["pairable_units"] == len(answers)


def test_it_reports_per_rater_speed_position_bias_and_gold(make_project, add_items, member, make_user):
    project = make_project(Kind.BINARY)
    lefty = make_user("lefty")
    join(project, lefty)
    start = datetime(2026, 3, 2, 9, 0, tzinfo=dt_timezone.utc)
    items = add_items(project, 10)
    for i, item in enumerate(items):
        order = [0, 1] if i % 2 == 0 else [1, 0]
        # member always prefers candidate 0, whatever side it is on; lefty always clicks the left card.
        judge(project, item, member, {"winner": 0}, order=order, duration_ms=20_000, when=start + timedelta(seconds=30 * i), gold_correct=(i < 4) if i < 5 else None)
        judge(project, item, lefty, {"winner": order[0]}, order=order, duration_ms=8_000, when=start + timedelta(seconds=10 * i))
    quality = project_quality_compute(project=project)
    rows = {r["username"]: r for r in quality["raters"]}
    assert rows["lefty"]["first_card_share"] == 1.0
    assert rows["member"]["first_card_share"] == 0.5
    assert rows["member"]["median_seconds"] == 20.0
    # 20 s on screen each (tests/annotation/test_quality_figures.py): 180 per active hour.
    assert rows["member"]["judgments_per_hour"] == pytest.approx(180)
    assert rows["member"]["gold_accuracy"] == pytest.approx(0.8) and rows["member"]["gold_answered"] == 5
    assert rows["lefty"]["gold_accuracy"] is None
    assert quality["summary"]["first_card_share"] == 0.75
    assert quality["summary"]["first_card_expected"] == 0.5


def test_it_plots_agreement_per_day_of_completed_items(make_project, add_items, member, make_user):
    project = make_project(Kind.BINARY)
    other = make_user("rater2")
    join(project, other)
    day1 = datetime(2026, 3, 2, 10, 0, tzinfo=dt_timezone.utc)
    day2 = day1 + timedelta(days=1)
    items = add_items(project, 8)
    for i, item in enumerate(items[:4]):  # day 1: perfect agreement
        judge(project, item, member, {"winner": i % 2}, when=day1)
        judge(project, item, other, {"winner": i % 2}, when=day1)
    for i, item in enumerate(items[4:]):  # day 2: the second rater always disagrees
        judge(project, item, member, {"winner": i % 2}, when=day1)  # started on day 1...
        judge(project, item, other, {"winner": 1 - i % 2}, when=day2)  # ...completed on day 2
    points = project_quality_compute(project=project)["over_time"]
    assert [p["period"] for p in points] == ["2026-03-02", "2026-03-03"]
    assert points[0]["alpha"] == pytest.approx(1.0)
    assert points[1]["alpha"] < 0
    assert points[1]["units"] == 4


def test_it_reads_rankings_with_and_without_ties_the_same_way():
    plain = agreement.position_matrix(Kind.RANKING, [{"ranking": [[2], [0], [1]]}])
    tied = agreement.position_matrix(Kind.RANKING, [{"ranking": [[2], [0, 1]]}, {"ranking": [[1], [2], [0]]}])
    assert plain.tolist() == [[1, 2, 0]]
    assert tied.tolist() == [[1, 1, 0], [2, 0, 1]]
    counted, first = agreement.first_card_picks(Kind.RANKING, [{"ranking": [[2], [0, 1]]}, {"ranking": [[0, 1], [2]]}], [[2, 0, 1], [0, 1, 2]])
    assert counted.tolist() == [True, False]  # a tied top tier names no single winner
    assert first.tolist() == [True, False]


def test_it_computes_ranking_and_rating_projects_end_to_end(make_project, add_items, member, make_user):
    other = make_user("rater2")
    ranking = make_project(Kind.RANKING, ranking_k=3, ranking_allow_ties=True)
    rating = make_project(Kind.RATING, rating_min=1, rating_max=5, rating_threshold=4)
    for project in (ranking, rating):
        join(project, other)
    for i, item in enumerate(add_items(ranking, 6)):
        value = {"ranking": [[i % 3], [(i + 1) % 3, (i + 2) % 3]] if i % 2 else [[i % 3], [(i + 1) % 3], [(i + 2) % 3]]}
        judge(ranking, item, member, value, order=[0, 1, 2])
        judge(ranking, item, other, value, order=[2, 1, 0])
    for i, item in enumerate(add_items(rating, 5, candidates=2)):
        judge(rating, item, member, {"scores": [1 + i % 5, 5 - i % 5]})
        judge(rating, item, other, {"scores": [1 + i % 5, 4 - i % 4]})
    ranked = project_quality_compute(project=ranking)["summary"]
    assert ranked["alpha"] == pytest.approx(1.0) and ranked["level"] == "ordinal"
    assert ranked["units"] == 18 and ranked["first_card_expected"] == pytest.approx(0.333)
    # The member's first card is candidate 0, the other's candidate 2: each is the winner in 2 of 6.
    assert ranked["first_card_share"] == pytest.approx(4 / 12, abs=1e-3)
    rated = project_quality_compute(project=rating)["summary"]
    assert rated["units"] == 10 and rated["pairable_units"] == 10
    assert 0 < rated["alpha"] < 1  # the first candidate's scores agree, the second's drift by one
