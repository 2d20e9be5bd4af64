"""The quality page, its plots, the pause/unpause and gold forms, and the quality API."""
from __future__ import annotations

import pytest

from annotation.assignment import RaterPaused, lease_next
from annotation.kinds import Kind
from annotation.models import Candidate, Membership
from tests.annotation.quality_factory import join, judge

PLOTS = ("agreement", "gold", "position")


@pytest.fixture
def judged(make_project, add_items, member, make_user):
    """A binary project with two named models and two raters who mostly agree."""
    project = make_project(Kind.BINARY, slug="judged", gold_pause_threshold=None)
    other = make_user("second-rater")
    join(project, other)
    items = add_items(project, 24)
    Candidate.objects.filter(item__project=project, position=0).update(model_name="policy-v2")
    Candidate.objects.filter(item__project=project, position=1).update(model_name="policy-v1")
    for i, item in enumerate(items):
        answer = 0 if i % 4 else 1
        judge(project, item, member, {"winner": answer}, order=[i % 2, 1 - i % 2], duration_ms=12_000)
        judge(project, item, other, {"winner": answer if i % 6 else 1 - answer}, order=[1 - i % 2, i % 2], duration_ms=9_000, gold_correct=(i % 6 != 0) if i < 12 else None)
    return project


def test_it_shows_the_quality_page_to_researchers_and_managers_only(judged, owner, researcher, member, outsider, staff, client_for):
    url = f"/projects/{judged.slug}/quality/"
    for user in (owner, researcher, staff):
        response = client_for(user).get(url)
        assert response.status_code == 200, user
        html = response.content.decode()
        assert 'id="q-alpha"' in html and "second-rater" in html and "policy-v2" in html
    assert client_for(member).get(url).status_code == 403
    response = client_for(outsider).get(url)
    assert response.status_code == 404 and b"second-rater" not in response.content
    response = client_for(None).get(url)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_it_shows_agreement_figures_rater_table_and_leaderboard(judged, researcher, client_for):
    html = client_for(researcher).get(f"/projects/{judged.slug}/quality/").content.decode()
    assert "Krippendorff" in html and "Fleiss" in html and "Cohen" in html
    assert html.count('class="rater-row"') == 2
    assert html.count('class="leaderboard-row"') == 2
    assert html.index("policy-v2") < html.index("policy-v1")  # the model that wins 3 in 4 ranks first
    for name in PLOTS:
        assert f'src="/projects/{judged.slug}/quality/plot/{name}.svg"' in html
    # Researchers read; only managers get the pause forms and the gold settings.
    assert 'value="pause"' not in html and 'name="threshold"' not in html


def test_it_gives_managers_the_pause_controls(judged, owner, client_for):
    html = client_for(owner).get(f"/projects/{judged.slug}/quality/").content.decode()
    assert html.count('value="pause"') == 2
    assert 'name="threshold"' in html


@pytest.mark.parametrize("name", PLOTS)
def test_it_draws_each_plot_as_svg(judged, researcher, client_for, name):
    response = client_for(researcher).get(f"/projects/{judged.slug}/quality/plot/{name}.svg")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    body = response.content.decode()
    assert "<svg" in body and "</svg>" in body
    assert "<script" not in body
    assert len(body) > 2000  # a drawing, not an empty frame


def test_it_draws_plots_of_an_empty_project_too(make_project, owner, client_for):
    project = make_project(Kind.LIKERT)
    for name in PLOTS:
        response = client_for(owner).get(f"/projects/{project.slug}/quality/plot/{name}.svg")
        assert response.status_code == 200 and b"<svg" in response.content and b"</svg>" in response.content
    page = client_for(owner).get(f"/projects/{project.slug}/quality/")
    assert page.status_code == 200
    text = " ".join(page.content.decode().split())
    assert "0 human judgments by 0 raters on 0 items" in text
    assert all(f'id="plot-{name}"' in text for name in PLOTS)


def test_it_keeps_plots_from_raters_and_outsiders(judged, member, outsider, researcher, client_for):
    url = f"/projects/{judged.slug}/quality/plot/gold.svg"
    assert client_for(member).get(url).status_code == 403
    assert client_for(outsider).get(url).status_code == 404
    assert client_for(researcher).get(f"/projects/{judged.slug}/quality/plot/nope.svg").status_code == 404


def test_it_lets_a_manager_pause_and_unpause_a_rater(judged, owner, member, add_items, client_for):
    add_items(judged, 3, prefix="fresh")
    url = f"/projects/{judged.slug}/quality/raters/{member.id}/"
    response = client_for(owner).post(url, {"action": "pause"})
    # back on the quality page, at the raters table
    assert response.status_code == 302 and response["Location"] == f"/projects/{judged.slug}/quality/#raters"
    assert Membership.objects.get(project=judged, user=member).paused
    with pytest.raises(RaterPaused):
        lease_next(project=judged, rater=member)
    page = client_for(owner).get(f"/projects/{judged.slug}/quality/").content.decode()
    assert "paused by a manager" in page and 'value="unpause"' in page
    client_for(owner).post(url, {"action": "unpause"})
    assert not Membership.objects.get(project=judged, user=member).paused
    assert lease_next(project=judged, rater=member) is not None


def test_it_refuses_pausing_to_everyone_but_managers(judged, researcher, member, outsider, client_for, make_user):
    url = f"/projects/{judged.slug}/quality/raters/{member.id}/"
    assert client_for(researcher).post(url, {"action": "pause"}).status_code == 403
    assert client_for(member).post(url, {"action": "pause"}).status_code == 403
    assert client_for(outsider).post(url, {"action": "pause"}).status_code == 404
    assert not Membership.objects.get(project=judged, user=member).paused
    stranger = make_user("stranger")
    assert client_for(judged.created_by).post(f"/projects/{judged.slug}/quality/raters/{stranger.id}/", {"action": "pause"}).status_code == 404


def test_it_saves_the_gold_threshold_and_reevaluates_raters(judged, owner, researcher, client_for, make_user):
    second = Membership.objects.get(project=judged, user__username="second-rater")
    # second-rater answered 12 gold items, 10 right (83 %).
    url = f"/projects/{judged.slug}/quality/gold/"
    assert client_for(researcher).post(url, {"threshold": "0.9"}).status_code == 403
    response = client_for(owner).post(url, {"threshold": "0.9", "min_answers": "10"}, follow=True)
    assert "1 paused" in response.content.decode()
    second.refresh_from_db()
    judged.refresh_from_db()
    assert second.paused and judged.gold_pause_threshold == 0.9 and judged.gold_min_answers == 10
    client_for(owner).post(url, {"threshold": "", "min_answers": "10"})
    second.refresh_from_db()
    assert not second.paused
    response = client_for(owner).post(url, {"threshold": "lots"}, follow=True)
    assert "threshold" in response.content.decode()


def test_it_serves_quality_over_the_api(judged, owner, researcher, member, outsider, api_for):
    url = f"/api/projects/{judged.slug}/quality/"
    for user in (owner, researcher):
        data = api_for(user).get(url).json()
        assert data["summary"]["judgments"] == 48
        assert data["summary"]["level"] == "nominal"
        assert -1 <= data["summary"]["alpha"] <= 1
        assert {r["username"] for r in data["raters"]} == {"member", "second-rater"}
        assert data["over_time"]
    assert api_for(member).get(url).status_code == 403
    response = api_for(outsider).get(url)
    assert response.status_code == 404 and "summary" not in response.json()
