"""A manager sets up a project in a real chromium: the form starts from the kind, shows only
that kind's settings, previews what raters will see through the labelling page's own template,
and adds members from a searchable list. Strict CSP: nothing may be refused."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from annotation.models import Membership, Project, Role
from annotation.projects import MANAGERS_GROUP
from tests.e2e.conftest import screenshot_path

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def visible(page, selector: str) -> bool:
    return page.locator(selector).is_visible()


def wait_for_preview(page, previous: str | None) -> str:
    page.wait_for_function(
        "prev => { const p = document.getElementById('kind-preview'); return p.dataset.loaded && p.dataset.loaded !== prev; }",
        arg=previous or "",
    )
    return page.locator("#kind-preview").get_attribute("data-loaded")


def test_it_sets_up_a_ranking_project_from_the_kind_with_a_live_preview(page, login, owner, make_user):
    owner.groups.add(Group.objects.get_or_create(name=MANAGERS_GROUP)[0])
    make_user("alice"), make_user("alicia"), make_user("bob")  # members to search for
    csp = []
    page.on("console", lambda msg: csp.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.set_viewport_size({"width": 1366, "height": 768})

    login(owner, "/projects/new/")
    # Binary is chosen at first: its settings only, and a preview with the A/B buttons raters get.
    assert page.locator("#kind-binary input").is_checked()
    assert visible(page, "#field-allow_tie") and not visible(page, "#field-likert_points") and not visible(page, "#field-ranking_k")
    assert page.locator("#kind-preview .candidate").count() == 2
    assert page.locator("#kind-preview [data-choice]").first.inner_text().startswith("A")
    assert not visible(page, "#field-lease_seconds"), "rarely changed settings start folded"

    # Likert: its settings replace binary's, and the preview follows the number of points.
    page.click("#kind-likert")
    loaded = wait_for_preview(page, None)
    assert visible(page, "#field-likert_points") and not visible(page, "#field-allow_tie")
    assert page.locator("#kind-preview [data-choice]").count() == 7
    page.fill("#id_likert_points", "5")
    loaded = wait_for_preview(page, loaded)
    assert page.locator("#kind-preview [data-choice]").count() == 5
    assert "B much better" in page.locator("#kind-preview .answer").inner_text()

    # Rating: the scale with its labels, as raters will see it.
    page.click("#kind-rating")
    loaded = wait_for_preview(page, loaded)
    page.fill("#id_rating_labels", "awful\npoor\nok\ngood\ngreat")
    loaded = wait_for_preview(page, loaded)
    assert "great" in page.locator("#kind-preview .answer").inner_text()

    # Ranking of four: four responses to order.
    page.click("#kind-ranking")
    loaded = wait_for_preview(page, loaded)
    page.fill("#id_ranking_k", "4")
    loaded = wait_for_preview(page, loaded)
    assert page.locator("#kind-preview .candidate").count() == 4
    assert visible(page, "#field-ranking_k") and not visible(page, "#field-likert_points") and not visible(page, "#field-rating_min")
    page.screenshot(path=screenshot_path("project-new-ranking-1366x768.png"), full_page=True)

    # Members from the list: search narrows it, a button puts the person in the role's field.
    page.fill("[data-picker-search]", "ali")
    assert page.locator("[data-username]:visible").count() == 2
    page.click('[data-username="alice"] [data-picker-role=rater]')
    page.click('[data-username="alicia"] [data-picker-role=researcher]')
    page.click('[data-username="alicia"] [data-picker-role=rater]')  # changed her mind: a rater after all
    page.fill("[data-picker-search]", "bo")
    page.click('[data-username="bob"] [data-picker-role=researcher]')
    assert page.input_value("#id_raters") == "alice, alicia"
    assert page.input_value("#id_researchers") == "bob"
    assert page.locator('[data-username="bob"] [data-picker-role=researcher]').get_attribute("aria-pressed") == "true"

    height = page.evaluate("() => document.documentElement.scrollHeight")
    print(f"new-project form: {height} px tall at 1366x768 (ranking chosen)")
    assert height < 2000, f"the form is {height} px tall"

    page.fill("#id_name", "Rank four answers")
    page.click("form.project-form button[type=submit]")
    page.wait_for_url("**/projects/rank-four-answers/")
    project = Project.objects.get(slug="rank-four-answers")
    assert (project.kind, project.ranking_k) == ("ranking", 4)
    roles = dict(Membership.objects.filter(project=project).values_list("user__username", "role"))
    assert roles == {"owner": Role.MANAGER, "alice": Role.RATER, "alicia": Role.RATER, "bob": Role.RESEARCHER}
    assert page.watch.errors == [] and csp == []
