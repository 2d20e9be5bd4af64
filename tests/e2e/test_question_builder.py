"""A manager builds a project's questions in a real chromium (issue 22): rows of labelled inputs
written into the form's one `questions` field, a preset, the live preview showing the questions
where raters meet them, the server's errors beside the field they name, and the declaration
stored. Strict CSP: nothing may be refused."""
from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Group

from annotation.kinds import Kind
from annotation.models import Judgment, Project
from annotation.projects import MANAGERS_GROUP
from annotation.questions import validate_questions
from tests.e2e.conftest import screenshot_path
from tests.e2e.test_project_setup import wait_for_preview

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def row(page, n: int):
    return page.locator("[data-question-row]").nth(n)


def test_it_builds_two_questions_previews_them_and_stores_them(page, login, owner):
    owner.groups.add(Group.objects.get_or_create(name=MANAGERS_GROUP)[0])
    csp = []
    page.on("console", lambda msg: csp.append(msg.text) if "Content Security Policy" in msg.text else None)
    login(owner, "/projects/new/")

    # Folded at first (most projects ask nothing more); the JSON box folds away behind the builder.
    assert not page.locator("[data-add-question]").is_visible()
    page.click("#group-questions > summary")
    assert page.locator("[data-add-question]").is_visible() and not page.locator("#id_questions").is_visible()

    # A question from the keyboard: Enter on the button, then the label (the key follows it).
    page.focus("[data-add-question]")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.dataset.q") == "label"
    page.keyboard.type("Clarity of the answer")
    first = row(page, 0)
    assert first.locator("[data-q=key]").input_value() == "clarity_of_the_answer"
    first.locator("[data-q=key]").fill("clarity")
    first.locator("[data-q=help]").fill("How easy is it to follow?")
    first.locator("[data-q=min]").fill("1")
    first.locator("[data-q=max]").fill("1")  # a mistake the server will name
    first.locator("[data-q=scale_labels]").fill("muddled\nok\nclear")
    assert first.locator("[data-field=choices]").is_hidden() and first.locator("[data-field=scale_labels]").is_visible()
    # Every input has its label.
    for control in first.locator("[data-q]").all():
        if control.get_attribute("type") != "checkbox":
            assert page.locator(f'label[for="{control.get_attribute("id")}"]').count() == 1

    # A preset: harm categories, one multi-label question for the item.
    page.click("[data-preset=harm]")
    assert page.locator("[data-question-row]").count() == 2
    assert row(page, 1).locator("[data-q=type]").input_value() == "labels"
    assert "Added harm" in page.locator("[data-builder-status]").inner_text()
    page.click("[data-preset=harm]")  # a second press adds nothing twice
    assert page.locator("[data-question-row]").count() == 2

    # A third, then taken off again: the buttons name their question for screen readers.
    page.click("[data-add-question]")
    assert row(page, 2).locator("[data-remove]").get_attribute("aria-label") == "Remove question 3"
    row(page, 2).locator("[data-remove]").click()
    assert page.locator("[data-question-row]").count() == 2

    declared = json.loads(page.input_value("#id_questions"))
    assert [(q["key"], q["type"], q["per"]) for q in declared] == [("clarity", "scale", "response"), ("harm", "labels", "item")]

    # The preview shows them as raters will: the scale under each response, the labels once.
    page.fill("#id_name", "Clear and safe")
    first.locator("[data-q=max]").fill("3")
    wait_for_preview(page, None)
    page.wait_for_selector('#kind-preview [data-question][data-key="clarity"]')
    questions = page.locator("#kind-preview")
    for side in "AB":
        assert questions.locator(f'[data-key="clarity"][data-card-label="{side}"] input[type=radio]').count() == 3
    assert questions.locator('[data-key="harm"]:not([data-position]) input[type=checkbox]').count() == 7
    page.screenshot(path=screenshot_path("project-new-questions-1400x1000.png"), full_page=True)

    # The server's error beside the field it names; the rows come back as typed.
    first.locator("[data-q=max]").fill("1")
    page.click("form.project-form button[type=submit]")
    page.wait_for_selector("#question-errors")
    error = row(page, 0).locator("[data-field=max] .error")
    assert error.inner_text() == "Question 1 (clarity), max: must be greater than min"
    assert row(page, 0).locator("[data-q=max]").get_attribute("aria-invalid") == "true"
    assert row(page, 0).locator("[data-q=help]").input_value() == "How easy is it to follow?"
    assert page.locator("[data-question-row]").count() == 2 and not Project.objects.exists()

    row(page, 0).locator("[data-q=max]").fill("3")
    page.click("form.project-form button[type=submit]")
    page.wait_for_url("**/projects/clear-and-safe/")
    project = Project.objects.get(slug="clear-and-safe")
    assert project.questions == validate_questions([{**declared[0], "max": 3}, declared[1]])
    assert project.questions[0]["scale_labels"] == ["muddled", "ok", "clear"]
    assert page.watch.errors == [] and csp == []


def test_it_fixes_the_shape_of_answered_questions_on_the_settings_page(page, login, owner, member, make_project, add_items):
    project = make_project(Kind.BINARY, slug="answered", questions=validate_questions([{"key": "helpfulness", "type": "scale", "min": 0, "max": 4, "required": True}]))
    item = add_items(project, 1)[0]
    Judgment.objects.create(project=project, item=item, rater=member, kind=project.kind, value={"winner": 0}, answers={"helpfulness": [3, 2]}, source=Judgment.Source.IMPORT)
    login(owner, "/projects/answered/settings/")
    assert page.locator("#questions-fixed").is_visible()
    answered = row(page, 0)
    assert answered.locator("[data-locked-note]").is_visible()
    assert answered.locator("[data-q=type]").is_disabled() and answered.locator("[data-remove]").is_disabled()
    assert answered.locator("[data-q=max]").get_attribute("readonly") is not None
    answered.locator("[data-q=label]").fill("How helpful?")  # rewording is allowed
    page.click("[data-add-question]")
    row(page, 1).locator("[data-q=label]").fill("Note")
    row(page, 1).locator("[data-q=type]").select_option("text")
    assert row(page, 1).locator("[data-q=per]").is_disabled()  # text is asked once per item
    page.click("form.project-form button[type=submit]")
    page.wait_for_url("**/projects/answered/")
    project.refresh_from_db()
    assert [(q["key"], q["label"], q["type"]) for q in project.questions] == [("helpfulness", "How helpful?", "scale"), ("note", "Note", "text")]
    assert page.watch.errors == []


def test_it_takes_the_declaration_typed_as_json_without_javascript(browser, live_server, owner):
    from tests.conftest import PASSWORD

    owner.groups.add(Group.objects.get_or_create(name=MANAGERS_GROUP)[0])
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    page.goto("/accounts/login/?next=/projects/new/")
    page.fill("input[name=username]", owner.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit], form input[type=submit]")
    page.wait_for_url("**/projects/new/")
    assert not page.locator("[data-add-question]").is_visible()  # the builder needs the script
    page.click("#group-questions > summary")
    page.fill("#id_name", "Typed by hand")
    page.fill("#id_questions", '[{"key": "overall", "type": "scale", "per": "item", "min": 0, "max": 2}]')
    page.click("form.project-form button[type=submit]")
    page.wait_for_url("**/projects/typed-by-hand/")
    assert Project.objects.get(slug="typed-by-hand").questions == validate_questions([{"key": "overall", "type": "scale", "per": "item", "min": 0, "max": 2}])
    context.close()
