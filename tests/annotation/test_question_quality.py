"""Quality per question: alpha at the right level with a bootstrap interval, each rater against
the others, gold answers per question; the page's Questions section and the API route."""
from __future__ import annotations

import krippendorff
import numpy as np
import pytest

from annotation import questions
from annotation.kinds import Kind
from annotation.models import Item, Judgment
from annotation.quality import question_agreement as qa
from annotation.quality.question_figures import project_question_quality, project_question_quality_compute
from tests.annotation.quality_factory import join, judge

ASKED = [
    {"key": "helpfulness", "label": "Helpfulness", "type": "scale", "per": "response", "min": 0, "max": 4, "required": True},
    {"key": "overall", "label": "Overall", "type": "scale", "per": "item", "min": 1, "max": 5},
    {"key": "harm", "label": "Harm", "type": "labels", "per": "response", "choices": ["violence", "hate", "spam"]},
    {"key": "note", "label": "Note", "type": "text"},
]

# Three raters on six two-response items: helpfulness per response, harm per response.
# rater -> item -> (helpfulness, harm); the third rater disagrees on purpose.
HELP = {
    "member": [[4, 1], [3, 0], [2, 2], [4, 3], [1, 0], [3, 3]],
    "second": [[4, 0], [3, 1], [2, 2], [3, 3], [1, 1], [4, 3]],
    "third": [[0, 4], [0, 4], [4, 0], [0, 4], [4, 0], [0, 0]],
}
HARM = {
    "member": [[["violence"], []], [[], []], [["hate"], []], [[], ["spam"]], [["violence", "hate"], []], [[], []]],
    "second": [[["violence"], []], [[], []], [["hate"], ["hate"]], [[], ["spam"]], [["violence"], []], [[], []]],
    "third": [[[], ["spam"]], [["violence"], []], [[], []], [["spam"], []], [[], ["spam"]], [["hate"], []]],
}
OVERALL = {"member": [5, 3, 2, 4, 1, 3], "second": [4, 3, 2, 4, 2, 3], "third": [1, 5, 5, 1, 5, 1]}
GOLD_ITEM = 0  # the first item is a gold item whose gold dict carries answers
GOLD = {"helpfulness": [4, 1], "harm": [["violence"], []], "overall": 5}


@pytest.fixture
def asked(make_project, add_items, member, make_user):
    project = make_project(Kind.BINARY, slug="asked", questions=questions.validate_questions(ASKED))
    raters = {"member": member, "second": make_user("second"), "third": make_user("third")}
    for user in raters.values():
        join(project, user)
    items = add_items(project, 6)
    Item.objects.filter(id=items[GOLD_ITEM].id).update(is_gold=True, gold={"winner": 0, "answers": GOLD})
    for name, user in raters.items():
        for i, item in enumerate(items):
            answers = {"helpfulness": HELP[name][i], "harm": HARM[name][i], "overall": OVERALL[name][i], "note": "fine"}
            Judgment.objects.filter(id=judge(project, item, user, {"winner": 0}).id).update(answers=answers)
    return project


def by_key(result: dict) -> dict:
    return {q["key"]: q for q in result["questions"]}


def reference_alpha(per_rater: dict, level: str, value_domain=None) -> float:
    """The package's alpha from a raters x units matrix: the path this module does not use."""
    data = np.array([np.ravel(v) for v in per_rater.values()], dtype=float)
    return krippendorff.alpha(reliability_data=data, level_of_measurement=level, value_domain=value_domain)


def test_it_bootstraps_with_the_same_alpha_the_package_computes():
    rng = np.random.default_rng(7)
    for level, V in (("ordinal", 5), ("nominal", 3), ("ordinal", 11)):
        unit = np.repeat(np.arange(60), 3)[:-4]  # the last unit has fewer raters
        value = np.clip(rng.integers(0, V, 60)[unit] + rng.integers(-1, 2, len(unit)), 0, V - 1)
        counts, kept = qa._unit_counts(unit, value, V)
        per_item, _ = qa.item_coincidences(counts, kept // 3)
        ours = qa.alpha_from_coincidences(per_item.sum(axis=0).reshape(V, V), level)
        theirs = krippendorff.alpha(value_counts=counts, value_domain=list(range(V)), level_of_measurement=level)
        assert ours == pytest.approx(theirs, abs=1e-9), level
    # The Jaccard distance on sets of one label each is the nominal metric: same alpha.
    masks = np.array([1, 2, 4])
    code = rng.integers(0, 3, 90)
    unit = np.repeat(np.arange(30), 3)
    counts, _ = qa._unit_counts(unit, code, 3)
    jaccard = qa.package_alpha(counts, "jaccard", qa.jaccard_distances(masks))
    assert jaccard == pytest.approx(qa.package_alpha(counts, "nominal"), abs=1e-9)
    assert qa.jaccard_distances(np.array([0, 3, 1]))[1, 2] == 0.5 and qa.jaccard_distances(np.array([0]))[0, 0] == 0.0


def test_it_reads_ragged_and_malformed_answers_like_the_numpy_fast_path():
    q = questions.validate_questions(ASKED)[0]
    rows = [(item, rater, {"helpfulness": HELP[name][item]}) for item in range(6) for rater, name in enumerate(HELP)]
    rows[0][2]["helpfulness"] = [4, None]  # an optional score left out: no cell, still the fast path
    rows[1][2]["helpfulness"] = [4, 9]  # off the scale (a hand-written import): no cell either
    fast = qa.QuestionCells(q, rows, {3: GOLD})
    slow = qa.QuestionCells(q, rows + [(9, 0, {"helpfulness": "x"}), (9, 1, {"helpfulness": [1, 2, 9]})], {3: GOLD})
    assert len(fast) == 34 and len(slow) == 36
    for name in ("item", "rater", "code", "gold"):
        assert getattr(slow, name)[:34].tolist() == getattr(fast, name).tolist(), name
    # Gold [4, 1] on item 3 only: both positions, for each of the three raters.
    assert sorted(zip(fast.item[fast.gold >= 0].tolist(), fast.gold[fast.gold >= 0].tolist())) == [(3, 1)] * 3 + [(3, 4)] * 3


def test_it_measures_each_scale_question_at_the_ordinal_level_with_an_interval(asked):
    result = project_question_quality_compute(project=asked)
    assert [q["key"] for q in result["questions"]] == ["helpfulness", "overall", "harm"]  # text has no agreement figure
    help_q = by_key(result)["helpfulness"]
    assert help_q["level"] == "ordinal" and help_q["answers"] == 36 and help_q["raters"] == 3 and help_q["items"] == 6
    assert help_q["pairable_units"] == 12 and help_q["pairable_items"] == 6
    assert help_q["alpha"] == pytest.approx(reference_alpha(HELP, "ordinal", value_domain=[0, 1, 2, 3, 4]), abs=1e-3)
    low, high = help_q["alpha_ci"]
    assert low <= help_q["alpha"] <= high and low < high
    overall = by_key(result)["overall"]
    assert overall["pairable_units"] == 6 and overall["alpha"] == pytest.approx(reference_alpha(OVERALL, "ordinal", value_domain=[1, 2, 3, 4, 5]), abs=1e-3)
    assert overall["mean"] == pytest.approx(np.mean([v for vs in OVERALL.values() for v in vs]), abs=1e-3)

    # Each rater against the mean of the two others, by hand.
    rows = {r["username"]: r for r in help_q["rater_table"]}
    for name in HELP:
        others = [o for o in HELP if o != name]
        distances = [abs(HELP[name][i][p] - np.mean([HELP[o][i][p] for o in others])) for i in range(6) for p in range(2)]
        assert rows[name]["distance_to_others"] == pytest.approx(np.mean(distances), abs=1e-3)
        assert rows[name]["compared"] == 12 and rows[name]["answers"] == 12
    assert rows["third"]["distance_to_others"] > 2 > rows["member"]["distance_to_others"]

    # Gold: within one point. member [4, 1] exact; second [4, 0] within one; third [0, 4] wrong.
    assert (rows["member"]["gold_accuracy"], rows["member"]["gold_exact"]) == (1.0, 1.0)
    assert (rows["second"]["gold_accuracy"], rows["second"]["gold_exact"]) == (1.0, 0.5)
    assert (rows["third"]["gold_accuracy"], rows["third"]["gold_answered"]) == (0.0, 2)
    assert help_q["gold_answered"] == 6 and help_q["gold_accuracy"] == pytest.approx(4 / 6, abs=1e-3)


def test_it_measures_labels_per_label_and_as_a_set(asked):
    harm = by_key(project_question_quality_compute(project=asked))["harm"]
    assert harm["level"].startswith("nominal per label")
    labels = {row["label"]: row for row in harm["labels"]}
    for choice in ("violence", "hate", "spam"):
        yes_no = {name: [[int(choice in s) for s in item] for item in HARM[name]] for name in HARM}
        assert labels[choice]["alpha"] == pytest.approx(reference_alpha(yes_no, "nominal"), abs=1e-3), choice
        assert labels[choice]["pairable_units"] == 12
        assert labels[choice]["prevalence"] == pytest.approx(np.mean([v for vs in yes_no.values() for item in vs for v in item]), abs=1e-3)
        assert labels[choice]["alpha_ci"] is not None
    assert harm["alpha"] is not None and harm["alpha_ci"] is not None

    # Per rater, per label: agreement with the majority of the two others (a 1-1 split is no majority).
    rows = {r["username"]: r for r in harm["rater_table"]}
    for name in HARM:
        others = [o for o in HARM if o != name]
        ok = n = 0
        for i in range(6):
            for p in range(2):
                for choice in ("violence", "hate", "spam"):
                    votes = sum(choice in HARM[o][i][p] for o in others)
                    if votes == 1:
                        continue
                    n += 1
                    ok += (votes == 2) == (choice in HARM[name][i][p])
        assert (rows[name]["compared"], rows[name]["agreement"]) == (n, pytest.approx(ok / n, abs=1e-3)), name
        assert sum(v["compared"] for v in rows[name]["by_label"].values()) == n
    assert rows["third"]["agreement"] < rows["member"]["agreement"]

    # Gold [["violence"], []]: member and second exact; third has [[], ["spam"]]: 4 of 6 labels right.
    assert rows["member"]["gold_accuracy"] == 1.0 and rows["second"]["gold_accuracy"] == 1.0
    assert (rows["third"]["gold_accuracy"], rows["third"]["gold_per_label"]) == (0.0, pytest.approx(4 / 6, abs=1e-3))


def test_it_skips_gold_answers_that_are_not_canonical_and_answers_nobody_gave(asked, make_project, add_items, member):
    Item.objects.filter(project=asked, is_gold=True).update(gold={"winner": 0, "answers": {"helpfulness": ["x", 9], "harm": "violence", "overall": 2.0, "nope": 1}})
    result = by_key(project_question_quality_compute(project=asked))
    assert result["helpfulness"]["gold_answered"] == 0 and result["harm"]["gold_answered"] == 0
    assert result["overall"]["gold_answered"] == 3  # 2.0 is a whole number: JSON writers without integers

    empty = make_project(Kind.BINARY, questions=questions.validate_questions(ASKED))
    judge(empty, add_items(empty, 1)[0], member, {"winner": 0})  # a judgment with no answers
    for q in project_question_quality_compute(project=empty)["questions"]:
        assert q["answers"] == 0 and q["alpha"] is None and q["alpha_ci"] is None and q["rater_table"] == []


def test_it_recomputes_when_the_declaration_changes(asked):
    assert by_key(project_question_quality(project=asked))["helpfulness"]["max"] == 4
    declaration = [dict(q) for q in asked.questions]
    declaration[0]["max"] = 10
    asked.questions = questions.validate_questions(declaration)
    asked.save(update_fields=["questions"])
    assert by_key(project_question_quality(project=asked))["helpfulness"]["max"] == 10


def test_it_shows_the_questions_section_to_researchers_and_managers_only(asked, owner, researcher, member, outsider, staff, client_for):
    url = f"/projects/{asked.slug}/quality/"
    for user in (owner, researcher, staff):
        html = client_for(user).get(url).content.decode()
        assert 'id="questions"' in html and 'id="question-helpfulness"' in html and 'id="question-harm"' in html
        assert html.count('class="question-rater-row"') == 9 and 'data-label="spam"' in html
        assert "question-note" not in html  # text questions get no figures
    response = client_for(member).get(url)
    assert response.status_code == 403 and b"question-rater-row" not in response.content
    response = client_for(outsider).get(url)
    assert response.status_code == 404 and b"third" not in response.content
    assert client_for(None).get(url).status_code == 302


def test_it_leaves_the_section_out_for_a_project_without_questions(make_project, add_items, member, researcher, client_for, api_for):
    plain = make_project(Kind.BINARY)
    judge(plain, add_items(plain, 1)[0], member, {"winner": 0})
    assert 'id="questions"' not in client_for(researcher).get(f"/projects/{plain.slug}/quality/").content.decode()
    assert api_for(researcher).get(f"/api/projects/{plain.slug}/quality/questions/").json()["questions"] == []


def test_it_serves_question_quality_over_the_api_to_researchers_and_managers_only(asked, owner, researcher, member, outsider, api_for):
    url = f"/api/projects/{asked.slug}/quality/questions/"
    for user in (owner, researcher):
        data = api_for(user).get(url).json()
        assert data["intervals"].startswith("95% percentile bootstrap") and data["gold_tolerance"] == 1
        help_q = by_key(data)["helpfulness"]
        assert help_q["alpha_ci"] and {r["username"] for r in help_q["rater_table"]} == {"member", "second", "third"}
    response = api_for(member).get(url)
    assert response.status_code == 403 and "questions" not in response.json()
    response = api_for(outsider).get(url)
    assert response.status_code == 404 and "questions" not in response.json()
    assert api_for(None).get(url).status_code in (401, 403)
