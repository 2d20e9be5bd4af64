"""Django admin: managers' projects with members inline, items with candidates inline, the
records raters produce read-only, and list pages that stay cheap on big tables."""
from __future__ import annotations

import pytest
from django.contrib import admin as django_admin

from annotation.assignment import lease_next
from annotation.models import Assignment, DatasetSnapshot, ImportBatch, Item, Judgment, Membership, Project, Role

pytestmark = pytest.mark.django_db


def _project_form(**overrides):
    data = {
        "name": "Admin-made",
        "slug": "admin-made",
        "kind": "rating",
        "instructions": "Rate *helpfulness*.",
        "likert_points": "7",
        "likert_labels": "[]",
        "ranking_k": "4",
        "rating_min": "1",
        "rating_max": "5",
        "rating_threshold": "4",
        "rating_labels": "[]",
        "overlap": "2",
        "lease_seconds": "600",
        "gold_rate": "0",
        "gold_min_answers": "5",
        "memberships-TOTAL_FORMS": "1",
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
        "memberships-0-user": "",
        "memberships-0-role": "rater",
    }
    data.update(overrides)
    return data


def test_it_creates_a_project_with_members_in_the_admin(client_for, staff, member):
    response = client_for(staff).post("/admin/annotation/project/add/", _project_form(**{"memberships-0-user": str(member.id)}))
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    project = Project.objects.get(slug="admin-made")
    assert project.created_by == staff and project.overlap == 2
    roles = dict(Membership.objects.filter(project=project).values_list("user__username", "role"))
    assert roles == {"member": Role.RATER, "staff": Role.MANAGER}


def test_it_names_the_bad_setting_in_the_admin_and_saves_nothing(client_for, staff):
    response = client_for(staff).post("/admin/annotation/project/add/", _project_form(rating_threshold="9"))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "rating_threshold" in errors and "between 1 and 5" in errors["rating_threshold"][0]
    response = client_for(staff).post("/admin/annotation/project/add/", _project_form(kind="likert", likert_labels='["only one"]'))
    assert "likert_labels" in response.context["adminform"].form.errors
    assert not Project.objects.exists()


def test_it_opens_every_admin_page_of_the_annotation_app(client_for, staff, project, member, add_items):
    items = add_items(project, 3)
    lease = lease_next(project=project, rater=member)
    judgment = Judgment.objects.create(project=project, item=items[2], rater=staff, kind=project.kind, value={"winner": 1})
    batch = ImportBatch.objects.create(project=project, filename="x.jsonl")
    snapshot = DatasetSnapshot.objects.create(project=project, version=1)
    c = client_for(staff)
    for model, obj in ((Project, project), (Item, items[0]), (Judgment, judgment), (Assignment, lease), (ImportBatch, batch), (DatasetSnapshot, snapshot), (Membership, Membership.objects.first())):
        name = model._meta.model_name
        listing = c.get(f"/admin/annotation/{name}/")
        assert listing.status_code == 200, name
        assert c.get(f"/admin/annotation/{name}/{obj.pk}/change/").status_code == 200, name
    item_page = c.get(f"/admin/annotation/item/{items[0].pk}/change/").content.decode()
    assert "Answer 0 to p-00000" in item_page and "Answer 1 to p-00000" in item_page  # candidates inline


def test_it_keeps_what_raters_did_read_only(client_for, staff, project, member, add_items):
    add_items(project, 1)
    lease = lease_next(project=project, rater=member)
    c = client_for(staff)
    for name in ("judgment", "assignment", "importbatch", "datasetsnapshot"):
        assert c.get(f"/admin/annotation/{name}/add/").status_code == 403, name
    response = c.post(f"/admin/annotation/assignment/{lease.pk}/change/", {"status": "submitted"})
    assert response.status_code == 403
    lease.refresh_from_db()
    assert lease.status == Assignment.Status.ACTIVE


def test_it_lists_big_tables_with_a_fixed_number_of_queries(client_for, staff, project, add_items, django_assert_max_num_queries):
    c = client_for(staff)
    add_items(project, 5)
    for model in ("item", "judgment", "assignment"):
        c.get(f"/admin/annotation/{model}/")  # warm caches (content types, sessions)
    with django_assert_max_num_queries(12) as few:
        c.get("/admin/annotation/item/")
    add_items(project, 150, prefix="more")
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = c.get("/admin/annotation/item/")
    assert page.status_code == 200
    # The paginator never runs COUNT(*) over the whole table.
    with django_assert_max_num_queries(12) as queries:
        c.get("/admin/annotation/item/?p=1")
    assert not any("COUNT(*)" in q["sql"].upper() and "annotation_item" in q["sql"] for q in queries.captured_queries)
    assert "155" in c.get("/admin/annotation/item/").content.decode()  # capped counter still shows small totals


def test_it_registers_big_tables_with_raw_ids_and_no_full_count():
    for model in (Item, Judgment, Assignment):
        model_admin = django_admin.site._registry[model]
        assert model_admin.show_full_result_count is False
        assert "project" in model_admin.raw_id_fields
        assert model_admin.list_select_related


def test_it_keeps_the_kind_of_a_project_with_items_in_the_admin(client_for, staff, project, add_items):
    add_items(project, 1)
    data = _project_form(name=project.name, slug=project.slug, kind="rating", **{"memberships-TOTAL_FORMS": "0"})
    response = client_for(staff).post(f"/admin/annotation/project/{project.pk}/change/", data)
    assert response.status_code == 200
    assert "cannot change once the project has items" in response.context["adminform"].form.errors["kind"][0]
    project.refresh_from_db()
    assert project.kind == "binary"
