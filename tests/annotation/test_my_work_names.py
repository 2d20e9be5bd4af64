"""My work names each answer by its prompt and the responses the rater saw, in the order and with
the letters of their screen, for every role (a manager also sees the importer's id beside it), in
a fixed number of queries however many rows the page holds."""
from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotation.models import Candidate, Item, Judgment

pytestmark = pytest.mark.django_db


def judge(project, rater, n, *, start=0):
    for i in range(start, start + n):
        item = Item.objects.create(project=project, external_id=f"gold-{i:03d}", prompt=[
            {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": f"What is {i} squared?"}])
        Candidate.objects.bulk_create([Candidate(item=item, position=p, text=f"answer {p} of {i}") for p in range(2)])
        # Shown B-side first: position 1 was "A" on this rater's screen.
        Judgment.objects.create(project=project, item=item, rater=rater, kind=project.kind, value={"winner": 1}, display_order=[1, 0])


def rows(html):
    return re.findall(r'<tr data-judgment="\d+">(.*?)</tr>', html, re.S)


def test_it_shows_the_last_question_and_the_responses_as_the_rater_saw_them(client_for, project, member):
    judge(project, member, 1)
    (row,) = rows(client_for(member).get(f"/projects/{project.slug}/my-work/").content.decode())
    assert "What is 0 squared?" in row
    # Response A on the rater's screen was position 1; the answer names it the same way.
    assert re.search(r"<b>A</b> answer 1 of 0.*<b>B</b> answer 0 of 0", row, re.S)
    assert "A better" in row
    assert "gold-000" not in row


def test_a_manager_sees_the_snippet_first_and_the_id_beside_it(client_for, project, owner):
    judge(project, owner, 1)
    (row,) = rows(client_for(owner).get(f"/projects/{project.slug}/my-work/").content.decode())
    assert re.search(r"<td data-item>What is 0 squared\? <span class=\"muted item-id\">gold-000</span>", row)
    assert "answer 1 of 0" in row


def test_the_page_costs_the_same_queries_for_2_rows_as_for_30(client_for, project, member):
    client = client_for(member)
    judge(project, member, 2)
    client.get(f"/projects/{project.slug}/my-work/")  # session and caches warm
    with CaptureQueriesContext(connection) as few:
        client.get(f"/projects/{project.slug}/my-work/")
    judge(project, member, 28, start=2)
    with CaptureQueriesContext(connection) as many:
        html = client.get(f"/projects/{project.slug}/my-work/").content.decode()
    assert len(rows(html)) == 30
    assert len(many.captured_queries) == len(few.captured_queries), [q["sql"][:120] for q in many.captured_queries]
