"""The demo loop's evaluation says what its numbers allow: each rate with n and its 95 % Wilson
interval, and a line saying when the interval is too wide to conclude; --eval-prompts evaluates on
a project's prompts (e.g. one imported from HH-RLHF) when the demo's test split is too small."""
from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command

from annotation.importers import import_records
from annotation.kinds import Kind
from training.loop.cli import interval_lines, prompts_for_half_width
from training.loop.models import Job


@pytest.mark.dbless
def test_it_calls_two_of_three_too_wide_to_conclude():
    # What the issue saw: 0.667 from 2 of 3 held-out prompts, read as if it meant something.
    lines = interval_lines(what="RM win rate", rate=2 / 3, n=3)
    assert lines[0] == "RM win rate: 0.667 on n=3 held-out prompts, 95% Wilson interval 0.208-0.939"
    assert lines[1].startswith("RM win rate: the interval is too wide to conclude (it spans 0.5); about 97 held-out prompts")


@pytest.mark.dbless
def test_it_says_when_the_interval_clears_one_half():
    assert interval_lines(what="win", rate=0.7, n=100)[1] == "win: the interval lies above 0.5"
    assert interval_lines(what="win", rate=0.3, n=100)[1] == "win: the interval lies below 0.5"
    assert "too wide" in interval_lines(what="win", rate=0.55, n=100)[1]
    assert "too wide" in interval_lines(what="win", rate=0.0, n=0)[1]  # no prompts: nothing to conclude
    # A given interval (the evaluation's own, ties counted half) is printed as it is.
    assert "interval 0.610-0.790" in interval_lines(what="win", rate=0.7, n=100, ci=(0.61, 0.79))[0]
    # ±0.1 around 0.5 at 95 %: 1.96² · 0.25 / 0.01 = 96.04, so 97 prompts.
    assert prompts_for_half_width() == 97


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_demo_loop_evaluates_on_the_prompts_it_is_given_and_prints_n_and_the_interval(tiny_model, make_project, settings):
    from tests.training.test_demo_loop import _rm_base

    tiny_model("tiny-policy", seed=0)
    _rm_base(settings)
    held_out = make_project(Kind.BINARY, slug="hh-held-out")
    shared = "\n\nHuman: Held-out question {}?\n\nAssistant:"
    import_records(project=held_out, records=[{"chosen": shared.format(i) + " Yes.", "rejected": shared.format(i)} for i in range(12)])

    out = StringIO()
    call_command("demo_loop", "--policy", "tiny-policy", "--reward-base", "tiny-rm-base", "--rl-steps", "2", "--prompts", "2",
                 "--max-new-tokens", "4", "--eval-prompts", "hh-held-out", "--eval-limit", "10", stdout=out)
    text = out.getvalue()

    evaluation = Job.objects.get(kind=Job.Kind.EVALUATION)
    assert evaluation.status == "succeeded" and evaluation.result["n"] == 10
    found = re.search(r"RM win rate: ([\d.]+) on n=10 held-out prompts, 95% Wilson interval ([\d.]+)-([\d.]+)", text)
    assert found, text
    low, high = float(found.group(2)), float(found.group(3))
    assert (low, high) == (round(evaluation.result["ci_low"], 3), round(evaluation.result["ci_high"], 3))
    verdict = ("lies above 0.5" if low > 0.5 else "lies below 0.5" if high < 0.5 else "is too wide to conclude")
    assert f"RM win rate: the interval {verdict}" in text
    # The reward model's accuracy on the demo's few test pairs: printed with its n, and too wide.
    accuracy = re.search(r"reward-model accuracy: [\d.]+ on n=(\d+) held-out prompts", text)
    assert accuracy and int(accuracy.group(1)) < 10
    assert "reward-model accuracy: the interval is too wide to conclude" in text
    assert "only " not in text.split("RM win rate of")[1].split("\n== 4.")[0]  # given prompts: no "only n in the test split" note
