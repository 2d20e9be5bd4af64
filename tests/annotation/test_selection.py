"""The next-item order: fewest judgments first, then by a stored priority (annotation/selection.py).
The reward model of "least certain first" is training's: tests/training/test_selection_scoring.py.
The concurrency and index-plan tests run for each ordering in test_concurrency.py and
test_assignment.py; here: what each ordering hands out, the scoring job, and the endpoints."""
from __future__ import annotations

import pytest
from django.core.management import call_command
from django.urls import reverse

from annotation.assignment import lease_next
from annotation.importers.service import import_records
from annotation.models import Item, Project
from annotation.selection import priorities_reset, selection_set


def _order(project, rater, n) -> list[str]:
    """Claim n items in a row (each lease answered by expiring it: we only want the order)."""
    seen = []
    for _ in range(n):
        lease = lease_next(project=project, rater=rater)
        if lease is None:
            break
        seen.append(lease.item.external_id)
        lease.status = lease.Status.SKIPPED
        lease.save(update_fields=["status"])
    return seen


def test_it_hands_out_the_lowest_priority_first_among_equally_taken_items(project, add_items, member):
    items = add_items(project, 4)
    for item, priority in zip(items, [0.9, 0.1, 0.5, 0.3]):
        Item.objects.filter(pk=item.pk).update(priority=priority)
    assert _order(project, member, 4) == [items[1].external_id, items[3].external_id, items[2].external_id, items[0].external_id]


def test_it_still_gives_fewest_judgments_first_whatever_the_priority(project, add_items, member):
    project.overlap = 3
    project.save()
    items = add_items(project, 3)
    Item.objects.filter(pk=items[0].pk).update(priority=0.0, taken=1, judgment_count=1)  # most uncertain, but already judged once
    Item.objects.filter(pk=items[1].pk).update(priority=0.8)
    Item.objects.filter(pk=items[2].pk).update(priority=0.4)
    assert _order(project, member, 3) == [items[2].external_id, items[1].external_id, items[0].external_id]


def test_it_draws_random_priorities_when_chosen_and_on_import(project, add_items):
    add_items(project, 50)
    selection_set(project=project, selection="random")
    values = list(Item.objects.filter(project=project).values_list("priority", flat=True))
    assert len(set(values)) == 50 and all(0.0 <= v < 1.0 for v in values)
    import_records(project=project, records=[{"id": f"new-{i}", "prompt": "Q?", "responses": ["a", "b"]} for i in range(20)])
    fresh = list(Item.objects.filter(project=project, external_id__startswith="new-").values_list("priority", flat=True))
    assert len(set(fresh)) == 20 and all(0.0 <= v < 1.0 for v in fresh)
    selection_set(project=project, selection="fewest")
    assert set(Item.objects.filter(project=project).values_list("priority", flat=True)) == {0.0}


def test_it_keeps_gold_items_at_priority_zero(project, add_items):
    add_items(project, 5, gold={"kind": "binary", "winner": 0})
    add_items(project, 5, prefix="q")
    project.selection = "random"
    project.save()
    priorities_reset(project=project)
    assert set(Item.objects.filter(project=project, is_gold=True).values_list("priority", flat=True)) == {0.0}


def test_it_refuses_uncertain_order_without_a_reward_model(project):
    from annotation.selection import SelectionError

    with pytest.raises(SelectionError, match="selection_model"):
        selection_set(project=project, selection="uncertain")
    project.refresh_from_db()
    assert project.selection == "fewest"


def test_it_keeps_fewest_and_random_without_a_scorer_installed(project, add_items, monkeypatch):
    """annotation alone (no training app to fill annotation.hooks): uncertain is refused with a
    reason, the other orders work, and nothing is queued."""
    from annotation import hooks
    from annotation.selection import SelectionError, priorities_refresh

    monkeypatch.setattr(hooks, "uncertainty", None)
    add_items(project, 3)
    with pytest.raises(SelectionError, match="selection_model: no reward-model scorer is installed"):
        selection_set(project=project, selection="uncertain")
    selection_set(project=project, selection="random")
    assert Project.objects.get(pk=project.pk).selection == "random"
    assert priorities_refresh(project=project, reason="asked for") is False


# ----- endpoints: owner (manager), member (rater), researcher, outsider


def test_it_shows_and_changes_the_order_over_the_api_for(api_for, project, owner, member, researcher, outsider, add_items):
    add_items(project, 10)
    url = f"/api/projects/{project.slug}/selection/"
    assert api_for(outsider).get(url).status_code == 404
    assert api_for(member).get(url).status_code == 403
    got = api_for(researcher).get(url)
    assert got.status_code == 200 and got.json()["selection"] == "fewest"
    assert api_for(researcher).put(url, {"selection": "random"}, format="json").status_code == 403
    changed = api_for(owner).put(url, {"selection": "random"}, format="json")
    assert changed.status_code == 200 and changed.json()["selection"] == "random"
    assert len(set(Item.objects.filter(project=project).values_list("priority", flat=True))) == 10
    refused = api_for(owner).put(url, {"selection": "uncertain"}, format="json")
    assert refused.status_code == 400 and "selection_model" in refused.json()
    bad = api_for(owner).put(url, {"selection": "alphabetical"}, format="json")
    assert bad.status_code == 400 and "selection" in bad.json()
    assert api_for(owner).post(url + "refresh/").status_code == 400  # not ordered by a reward model
    assert api_for(outsider).post(url + "refresh/").status_code == 404


def test_it_offers_the_setting_to_managers_on_a_page(client_for, project, owner, researcher, member, outsider, add_items):
    url = reverse("annotation:project-selection", kwargs={"slug": project.slug})
    assert client_for(outsider).get(url).status_code == 404
    assert client_for(member).get(url).status_code == 403
    client = client_for(researcher)
    page = client.get(url).content.decode()
    assert "Fewest judgments first, oldest first" in page and 'type="radio"' not in page
    assert client.post(url, {"selection": "random"}).status_code == 403
    client = client_for(owner)
    page = client.get(url).content.decode()
    assert 'type="radio"' in page
    client.post(url, {"selection": "random"})
    project.refresh_from_db()
    assert project.selection == "random"
    detail = client.get(f"/projects/{project.slug}/").content.decode()
    assert url in detail


def test_it_sets_the_order_from_the_command_line(project, add_items, capsys):
    add_items(project, 5)
    call_command("selection", "--project", project.slug, "--order", "random")
    assert "random order" in capsys.readouterr().out
    assert Project.objects.get(pk=project.pk).selection == "random"


def test_it_resets_a_large_projects_order_on_the_worker_not_in_the_request(project, add_items, monkeypatch, django_capture_on_commit_callbacks):
    import annotation.selection as selection

    monkeypatch.setattr(selection, "INLINE_RESET_ITEMS", 5)
    add_items(project, 12)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        selection_set(project=project, selection="random")
    assert set(Item.objects.filter(project=project).values_list("priority", flat=True)) == {0.0}  # nothing done in the request
    assert Project.objects.get(pk=project.pk).selection_status["state"] == "queued"
    for callback in queued:
        callback()  # the worker (eager in tests)
    assert len(set(Item.objects.filter(project=project).values_list("priority", flat=True))) == 12
    assert Project.objects.get(pk=project.pk).selection_status == {}
