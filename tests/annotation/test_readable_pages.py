"""Figures and names are rendered for people: no Python dict on a page (the AI judge's
disagreements, an evaluation's sampling settings), a project's name shown as typed in its dataset
card, and each role's top bar offering only what it can use (a rater has no Training link)."""
from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from django.template.loader import render_to_string

from annotation.exports import snapshot_create
from annotation.exports.build import snapshot_build
from annotation.kinds import Kind
from annotation.models import Judgment


def test_the_ai_judges_worst_disagreements_read_as_answers_not_dicts(db, make_project, add_items, make_user, client_for, owner):
    project = make_project(Kind.BINARY, allow_tie=True)
    items = add_items(project, 4)
    alice, bob = make_user("alice"), make_user("bob")
    for item in items:
        for rater in (alice, bob):
            Judgment.objects.create(project=project, item=item, rater=rater, kind=project.kind, value={"winner": 0}, display_order=[1, 0])
        Judgment.objects.create(project=project, item=item, rater=None, kind=project.kind, source="ai", value={"winner": "tie"},
                                ai_model="judge-lm", ai_template="default@abc", rationale="close call")
    html = client_for(owner).get(f"/projects/{project.slug}/quality/").content.decode()
    section = html[html.index("Where they disagree most"):]
    assert "{&#x27;" not in html and "{'" not in html and "&#x27;winner" not in html
    # The AI's tie and the raters' choice of the first imported response (A on this page).
    assert re.search(r"AI <span data-ai-answer>Tie</span> · raters alice <span data-human-answer>A better</span>", section)
    assert "Response A" in section and "Response B" in section


@pytest.mark.dbless
def test_the_evaluation_page_gives_its_sampling_in_words():
    sampling = {"temperature": 0.7, "top_p": 0.9, "max_new_tokens": 128, "seed": 3}
    job = SimpleNamespace(pk=7, kind="evaluation", status="succeeded", error="", params={"prompts": {"label": "demo v1"}},
                          policy=SimpleNamespace(pk=1, name="tiny-policy"), project=SimpleNamespace(name="Demo"),
                          get_kind_display="Policy evaluation",
                          result={"n": 4, "win_rate": 0.5, "sampling": sampling, "policy": "tiny-policy", "reference": "tiny-base"})
    html = render_to_string("training/job_detail.html", {"job": job, "running": False, "samples": []})
    (row,) = re.findall(r"<td data-sampling>(.*?)</td>", html)
    assert row == "temperature 0.7 · top-p 0.9 · max 128 tokens · seed 3"
    assert "{" not in row


def test_the_dataset_card_shows_the_projects_name_as_typed(db, make_project, add_items, owner, member, client_for):
    project = make_project(Kind.BINARY, slug="rd", name="R&amp;D *beta* <team>")
    items = add_items(project, 2)
    for item in items:
        Judgment.objects.create(project=project, item=item, rater=member, kind=project.kind, value={"winner": 0}, display_order=[0, 1])
    snapshot = snapshot_build(snapshot_id=snapshot_create(project=project, options={"test_share": 0.0}, created_by=owner, enqueue=False).id)
    html = client_for(owner).get(f"/projects/rd/datasets/v{snapshot.version}/").content.decode()
    card = html[html.index('id="card"'):]
    # Escaped once by the page: the text a reader sees is the name exactly as it was typed.
    assert "R&amp;amp;D *beta* &lt;team&gt;" in card
    assert "<em>beta</em>" not in card and "<team>" not in card


@pytest.mark.django_db
def test_a_rater_has_no_training_link_and_a_researcher_has(make_project, member, researcher, client_for):
    make_project(Kind.BINARY)
    assert 'href="/training/"' not in client_for(member).get("/").content.decode()
    assert 'href="/training/"' in client_for(researcher).get("/").content.decode()


@pytest.mark.django_db
def test_a_new_project_leads_with_import_then_members(make_project, owner, client_for, add_items):
    project = make_project(Kind.BINARY, slug="fresh")
    html = client_for(owner).get("/projects/fresh/").content.decode()
    # Next steps come before labelling, import is the primary action, and labelling is not.
    assert html.index('id="next-steps"') < html.index('id="start-labelling"')
    assert re.search(r'class="button primary" href="/projects/fresh/import/" id="next-import"', html)
    assert not re.search(r'class="button primary"[^>]*id="start-labelling"', html)
    assert "nothing to label yet" in html
    # The fixture's project has a rater; once items are imported, the steps give way to labelling.
    add_items(project, 1)
    html = client_for(owner).get("/projects/fresh/").content.decode()
    assert 'id="next-steps"' not in html and re.search(r'class="button primary"[^>]*id="start-labelling"', html)


@pytest.mark.django_db
def test_the_project_form_labels_its_settings_in_words(owner, client_for):
    from django.contrib.auth.models import Group

    from annotation.projects import MANAGERS_GROUP

    owner.groups.add(Group.objects.get_or_create(name=MANAGERS_GROUP)[0])
    html = client_for(owner).get("/projects/new/").content.decode()
    labels = re.findall(r"<label[^>]*>([^<]+)</label>", html)
    assert "Fewest responses per item" in labels and "Points on the scale" in labels
    assert not [label for label in labels if re.search(r"\b(min|max) k\b|Ranking k|Likert points|Lease seconds", label)], labels
