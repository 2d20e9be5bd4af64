"""The quality page's figures agree with each other: speed from one source (the time each
judgment took), date axes that fit the data, each plot captioned once."""
from __future__ import annotations

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.utils.html import escape

from annotation.kinds import Kind
from annotation.quality.figures import project_quality_compute
from annotation.quality.plots import FIGURES, PLOTS, plot_captions
from tests.annotation.quality_factory import join, judge

pytestmark = pytest.mark.django_db

START = datetime(2026, 11, 27, 9, 0, tzinfo=dt_timezone.utc)


@pytest.fixture
def two_raters(make_project, member, make_user):
    project = make_project(Kind.BINARY, slug="figures", name="Figures")
    other = make_user("rater2")
    join(project, other)
    return project, member, other


def test_it_does_not_report_1_s_per_judgment_beside_200000_per_hour(two_raters, add_items):
    # A batch saved at once (an import, a seed): timestamps milliseconds apart, 1 s on screen each.
    project, member, other = two_raters
    for i, item in enumerate(add_items(project, 40)):
        for rater in (member, other):
            judge(project, item, rater, {"winner": i % 2}, duration_ms=1000, when=START + timedelta(milliseconds=5 * i))
    summary = project_quality_compute(project=project)["summary"]
    assert summary["median_seconds"] == 1.0 and summary["mean_seconds"] == 1.0
    assert summary["judgments_per_hour"] == pytest.approx(3600)


def test_it_derives_rate_and_median_from_the_same_times(two_raters, add_items):
    project, member, other = two_raters
    durations = [5, 10, 10, 20, 3600]  # the last: a tab left open over lunch, counted as a 10-minute break
    for i, item in enumerate(add_items(project, len(durations))):
        judge(project, item, member, {"winner": 0}, duration_ms=durations[i] * 1000, when=START + timedelta(minutes=i))
    quality = project_quality_compute(project=project)
    row = quality["raters"][0]
    capped = [5, 10, 10, 20, 600]
    assert row["median_seconds"] == 10.0
    assert row["mean_seconds"] == pytest.approx(sum(capped) / 5, abs=0.1)
    assert row["judgments_per_hour"] == pytest.approx(3600 / (sum(capped) / 5), abs=0.1)
    assert quality["summary"]["judgments_per_hour"] == row["judgments_per_hour"]


def test_it_times_judgments_without_a_duration_by_the_gap_since_the_raters_last(two_raters, add_items):
    # An API client that sends no duration: 30 s between answers, one break of an hour.
    project, member, other = two_raters
    moments = [0, 30, 60, 90, 3690, 3720]
    for i, item in enumerate(add_items(project, len(moments))):
        judge(project, item, member, {"winner": 0}, when=START + timedelta(seconds=moments[i]))
    row = project_quality_compute(project=project)["raters"][0]
    # Four 30 s gaps; the first answer and the one after the break take the median, 30 s.
    assert row["median_seconds"] == 30.0
    assert row["judgments_per_hour"] == pytest.approx(120)


def test_it_fits_the_agreement_axis_to_a_single_day(two_raters, add_items):
    project, member, other = two_raters
    for i, item in enumerate(add_items(project, 6)):
        judge(project, item, member, {"winner": i % 2}, duration_ms=4000, when=START + timedelta(minutes=i))
        judge(project, item, other, {"winner": i % 2 if i else 1}, duration_ms=4000, when=START + timedelta(minutes=i, seconds=20))
    quality = project_quality_compute(project=project)
    assert len(quality["over_time"]) == 1
    ax = FIGURES["agreement"](quality).axes[0]
    low, high = ax.get_xlim()  # matplotlib date numbers: days
    assert high - low <= 2, f"a one-day plot spans {high - low:.0f} days"
    assert low <= ax.lines[0].get_xdata(orig=False)[0] <= high


def test_it_captions_each_plot_once(two_raters, add_items, researcher, client_for):
    project, member, other = two_raters
    for i, item in enumerate(add_items(project, 4)):
        for rater in (member, other):
            judge(project, item, rater, {"winner": 0}, duration_ms=3000, when=START + timedelta(minutes=i))
    quality = project_quality_compute(project=project)
    for name in PLOTS:
        assert all(not ax.get_title() for ax in FIGURES[name](quality).axes), f"{name} has a title inside the picture too"
    html = client_for(researcher).get(f"/projects/{project.slug}/quality/").content.decode()
    for name, caption in plot_captions(quality).items():
        assert html.count(f'id="caption-{name}"') == 1
        assert html.count(escape(caption)) == 1, name
    assert "Judgments per active hour" in html and "3600 s divided by the mean time per judgment" in html
