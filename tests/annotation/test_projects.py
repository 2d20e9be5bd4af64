"""Project management: creating, changing settings and members, in the browser and the API."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError

from annotation.kinds import Kind
from annotation.models import Item, Judgment, Membership, Project, Role
from annotation.projects import MANAGERS_GROUP, membership_remove, membership_set, project_create, project_statistics, project_update

pytestmark = pytest.mark.django_db


@pytest.fixture
def creator(make_user):
    user = make_user("boss")
    group, _ = Group.objects.get_or_create(name=MANAGERS_GROUP)
    user.groups.add(group)
    return user


def _form(**overrides):
    data = {
        "name": "Helpfulness round 1",
        "slug": "",
        "instructions": "# Judge helpfulness\n\nPick the **more helpful** answer.",
        "kind": "binary",
        "allow_tie": "on",
        "likert_points": "7",
        "likert_labels": "",
        "ranking_k": "4",
        "rating_min": "1",
        "rating_max": "5",
        "rating_threshold": "4",
        "rating_labels": "",
        "overlap": "3",
        "lease_seconds": "300",
        "gold_rate": "0",
        "gold_pause_threshold": "",
        "gold_min_answers": "5",
        "raters": "",
        "researchers": "",
    }
    data.update(overrides)
    return data


def test_it_creates_a_project_in_the_browser_with_its_raters_and_researchers(client_for, creator, member, researcher):
    response = client_for(creator).post("/projects/new/", _form(raters="member", researchers="researcher"))
    project = Project.objects.get(name="Helpfulness round 1")
    assert response.status_code == 302 and response["Location"] == f"/projects/{project.slug}/"
    assert project.slug == "helpfulness-round-1"
    assert (project.overlap, project.lease_seconds, project.allow_tie, project.allow_both_bad) == (3, 300, True, False)
    roles = dict(Membership.objects.filter(project=project).values_list("user__username", "role"))
    assert roles == {"boss": Role.MANAGER, "member": Role.RATER, "researcher": Role.RESEARCHER}
    page = client_for(creator).get(response["Location"]).content.decode()
    assert "<strong>more helpful</strong>" in page  # instructions rendered as markdown


@pytest.mark.parametrize(
    "overrides, field, words",
    [
        ({"kind": "rating", "rating_min": "5", "rating_max": "3"}, "rating_max", "greater than the minimum"),
        ({"kind": "rating", "rating_threshold": "9"}, "rating_threshold", "between 1 and 5"),
        ({"kind": "likert", "likert_labels": "A better\nB better"}, "likert_labels", "one label per point"),
        ({"kind": "ranking", "ranking_k": "1"}, "ranking_k", "greater than or equal to 2"),
        ({"overlap": "0"}, "overlap", "greater than or equal to 1"),
        ({"lease_seconds": "5"}, "lease_seconds", "greater than or equal to 30"),
        ({"slug": "new"}, "slug", "reserved"),
        ({"raters": "member, nobody-here"}, "raters", "no such user: nobody-here"),
        ({"name": ""}, "name", "required"),
    ],
)
def test_it_names_the_field_of_each_bad_setting_and_creates_nothing(client_for, creator, member, overrides, field, words):
    response = client_for(creator).post("/projects/new/", _form(**overrides))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors and words in " ".join(errors[field])
    assert f'id="field-{field}"' in response.content.decode()
    assert not Project.objects.exists()


def test_it_refuses_a_second_project_with_the_same_slug(client_for, creator, project):
    response = client_for(creator).post("/projects/new/", _form(slug="demo"))
    assert "slug" in response.context["form"].errors
    assert Project.objects.filter(slug="demo").count() == 1


def test_it_lets_only_managers_and_staff_create_projects(client_for, member, staff, make_user):
    assert client_for(member).get("/projects/new/").status_code == 403
    assert client_for(member).post("/projects/new/", _form()).status_code == 403
    assert not Project.objects.exists()
    assert client_for(staff).get("/projects/new/").status_code == 200
    holder = make_user("holder")
    holder.user_permissions.add(Permission.objects.get(codename="add_project"))
    assert client_for(holder).post("/projects/new/", _form(name="By permission")).status_code == 302
    assert Project.objects.filter(name="By permission", memberships__user=holder, memberships__role=Role.MANAGER).exists()


def test_it_lists_only_the_users_projects_but_all_for_staff(client_for, make_project, outsider, member, staff):
    mine = make_project(name="Member project")
    other = Project.objects.create(slug="secret", name="Secret project")
    page = client_for(member).get("/").content.decode()
    assert mine.name in page and other.name not in page
    assert "Secret project" not in client_for(outsider).get("/").content.decode()
    staff_page = client_for(staff).get("/").content.decode()
    assert mine.name in staff_page and other.name in staff_page


def test_it_shows_each_role_its_part_of_the_overview(client_for, project, owner, member, researcher, add_items):
    add_items(project, 4)
    rater_page = client_for(member).get("/projects/demo/").content.decode()
    assert "/projects/demo/label/" in rater_page and "Done today" in rater_page
    assert "stat-items" not in rater_page and "/projects/demo/import/" not in rater_page

    research_page = client_for(researcher).get("/projects/demo/").content.decode()
    assert 'id="stat-items">4<' in research_page
    assert "/projects/demo/datasets/" in research_page and "/projects/demo/quality/" in research_page
    assert "/projects/demo/import/" not in research_page and "/projects/demo/settings/" not in research_page

    manager_page = client_for(owner).get("/projects/demo/").content.decode()
    for link in ("/projects/demo/import/", "/projects/demo/settings/", "/projects/demo/members/", "stat-items"):
        assert link in manager_page


def test_it_computes_statistics_up_to_the_overlap(project, add_items, member):
    project.overlap = 2
    project.save()
    items = add_items(project, 4)
    add_items(project, 1, gold={"winner": 0}, prefix="g")
    items[0].judgment_count = 2
    items[0].save()
    items[1].judgment_count = 1
    items[1].save()
    gold = Item.objects.get(project=project, is_gold=True)
    gold.judgment_count = 2  # gold answers do not count toward the work done
    gold.save()
    Judgment.objects.create(project=project, item=items[0], rater=member, kind=project.kind, value={"winner": 0})
    Judgment.objects.create(project=project, item=items[1], rater=member, kind=project.kind, value={"winner": 1}, source=Judgment.Source.IMPORT)
    stats = project_statistics(project=project)
    assert stats["items"] == 4 and stats["gold_items"] == 1
    assert stats["judgments"] == 1 and stats["imported_judgments"] == 1
    assert stats["items_complete"] == 1
    assert stats["done_percent"] == 37.5  # 3 of 8 judgments needed


def test_it_saves_settings_and_keeps_the_kind_once_items_exist(client_for, project, owner, member, add_items):
    data = _form(name="Renamed", slug="demo", overlap="2", allow_both_bad="on")
    data.pop("raters"), data.pop("researchers")
    assert client_for(member).post("/projects/demo/settings/", data).status_code == 403
    response = client_for(owner).post("/projects/demo/settings/", data)
    assert response.status_code == 302
    project.refresh_from_db()
    assert (project.name, project.overlap, project.allow_both_bad) == ("Renamed", 2, True)

    add_items(project, 1)
    response = client_for(owner).post("/projects/demo/settings/", {**data, "kind": "rating"})
    assert "cannot change once the project has items" in " ".join(response.context["form"].errors["kind"])
    project.refresh_from_db()
    assert project.kind == Kind.BINARY


def test_it_validates_service_input_by_field(owner):
    with pytest.raises(ValidationError) as info:
        project_create(name="X", created_by=owner, kind=Kind.RATING, rating_threshold=0, colour="red")
    assert set(info.value.message_dict) == {"colour"}
    with pytest.raises(ValidationError) as info:
        project_create(name="X", created_by=owner, kind=Kind.RATING, rating_threshold=0)
    assert set(info.value.message_dict) == {"rating_threshold"}
    project = project_create(name="X", created_by=owner, kind=Kind.RANKING, ranking_k=3)
    with pytest.raises(ValidationError) as info:
        project_update(project=project, fields={"overlap": 0, "likert_points": 99})
    assert set(info.value.message_dict) == {"overlap", "likert_points"}
    project.refresh_from_db()
    assert project.overlap == 1


def test_it_manages_members_in_the_browser(client_for, project, owner, member, outsider):
    manager = client_for(owner)
    response = manager.post("/projects/demo/members/", {"action": "add", "username": "outsider", "role": "researcher"})
    assert response.status_code == 302
    assert Membership.objects.get(project=project, user=outsider).role == Role.RESEARCHER
    manager.post("/projects/demo/members/", {"action": "role", "username": "outsider", "role": "rater"})
    assert Membership.objects.get(project=project, user=outsider).role == Role.RATER
    manager.post("/projects/demo/members/", {"action": "pause", "username": "member"})
    assert Membership.objects.get(project=project, user=member).paused
    page = manager.get("/projects/demo/members/").content.decode()
    assert "paused by a manager" in page
    manager.post("/projects/demo/members/", {"action": "resume", "username": "member"})
    assert not Membership.objects.get(project=project, user=member).paused
    manager.post("/projects/demo/members/", {"action": "remove", "username": "outsider"})
    assert not Membership.objects.filter(project=project, user=outsider).exists()

    response = manager.post("/projects/demo/members/", {"action": "add", "username": "ghost", "role": "rater"})
    assert "username: no such user: ghost" in response.content.decode()
    response = manager.post("/projects/demo/members/", {"action": "remove", "username": "owner"}, follow=True)
    assert "a project needs at least one manager" in response.content.decode()
    assert Membership.objects.filter(project=project, user=owner, role=Role.MANAGER).exists()
    assert client_for(member).post("/projects/demo/members/", {"action": "add", "username": "outsider", "role": "manager"}).status_code == 403
    assert not Membership.objects.filter(project=project, user=outsider).exists()


def test_it_keeps_one_manager_on_every_project(project, owner, member):
    with pytest.raises(ValidationError) as info:
        membership_set(project=project, user=owner, role=Role.RATER)
    assert "role" in info.value.message_dict
    membership_set(project=project, user=member, role=Role.MANAGER)
    membership_set(project=project, user=owner, role=Role.RATER)
    assert membership_remove(project=project, user=owner) is True
    with pytest.raises(ValidationError):
        membership_remove(project=project, user=member)
    with pytest.raises(ValidationError) as info:
        membership_set(project=project, user=owner, role="overlord")
    assert "role" in info.value.message_dict


# --- API -----------------------------------------------------------------------------------------


def test_it_lists_each_projects_role_over_the_api_in_a_fixed_number_of_queries(api_for, make_project, researcher, staff, django_assert_max_num_queries):
    projects = [make_project(slug=f"p{i}") for i in range(5)]
    projects[0].memberships.filter(user=researcher).update(role=Role.MANAGER)
    api = api_for(researcher)
    with django_assert_max_num_queries(4):
        body = api.get("/api/projects/").json()
    assert {p["slug"]: p["role"] for p in body["results"]} == {"p0": "manager", "p1": "researcher", "p2": "researcher", "p3": "researcher", "p4": "researcher"}
    assert {p["role"] for p in api_for(staff).get("/api/projects/").json()["results"]} == {"manager"}


def test_it_lists_and_creates_projects_over_the_api(api_for, creator, member, make_project, outsider):
    mine = make_project()
    body = api_for(member).get("/api/projects/").json()
    assert [p["slug"] for p in body["results"]] == [mine.slug]
    assert body["results"][0]["role"] == "rater"
    assert api_for(outsider).get("/api/projects/").json()["results"] == []

    response = api_for(creator).post("/api/projects/", {"name": "Code review", "kind": "ranking", "ranking_k": 3, "raters": ["member"]}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["slug"] == "code-review" and response.json()["role"] == "manager"
    assert Membership.objects.get(project__slug="code-review", user=member).role == Role.RATER

    response = api_for(creator).post("/api/projects/", {"name": "Bad", "kind": "rating", "rating_threshold": 8, "raters": ["nobody"]}, format="json")
    assert response.status_code == 400 and "raters" in response.json()
    response = api_for(creator).post("/api/projects/", {"name": "Bad", "kind": "rating", "rating_threshold": 8}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["rating_threshold"]
    assert api_for(member).post("/api/projects/", {"name": "Mine"}, format="json").status_code == 403
    assert not Project.objects.filter(name__in=["Bad", "Mine"]).exists()


def test_it_updates_a_project_over_the_api_for_managers_only(api_for, project, owner, member, researcher, outsider):
    assert api_for(outsider).get("/api/projects/demo/").status_code == 404
    assert api_for(member).get("/api/projects/demo/").json()["kind"] == "binary"
    assert api_for(member).patch("/api/projects/demo/", {"overlap": 5}, format="json").status_code == 403
    assert api_for(researcher).patch("/api/projects/demo/", {"overlap": 5}, format="json").status_code == 403
    assert api_for(outsider).patch("/api/projects/demo/", {"overlap": 5}, format="json").status_code == 404
    response = api_for(owner).patch("/api/projects/demo/", {"overlap": 5, "instructions": "Be fair."}, format="json")
    assert response.status_code == 200 and response.json()["overlap"] == 5
    response = api_for(owner).patch("/api/projects/demo/", {"kind": "rating", "rating_min": 3, "rating_max": 2}, format="json")
    assert response.status_code == 400 and "rating_max" in response.json()
    project.refresh_from_db()
    assert (project.overlap, project.instructions, project.kind) == (5, "Be fair.", "binary")


def test_it_shows_statistics_to_researchers_over_the_api(api_for, project, member, researcher, outsider, add_items):
    add_items(project, 3)
    assert api_for(researcher).get("/api/projects/demo/statistics/").json()["items"] == 3
    assert api_for(member).get("/api/projects/demo/statistics/").status_code == 403
    assert api_for(outsider).get("/api/projects/demo/statistics/").status_code == 404


def test_it_manages_members_over_the_api(api_for, project, owner, member, researcher, outsider):
    manager = api_for(owner)
    names = {m["username"]: m["role"] for m in manager.get("/api/projects/demo/members/").json()}
    assert names == {"owner": "manager", "member": "rater", "researcher": "researcher"}
    assert api_for(member).get("/api/projects/demo/members/").status_code == 403
    assert api_for(researcher).get("/api/projects/demo/members/").status_code == 403
    assert api_for(outsider).get("/api/projects/demo/members/").status_code == 404

    response = manager.post("/api/projects/demo/members/", {"username": "outsider", "role": "rater"}, format="json")
    assert response.status_code == 201 and response.json()["role"] == "rater"
    response = manager.patch("/api/projects/demo/members/outsider/", {"paused": True}, format="json")
    assert response.json()["paused"] is True and response.json()["role"] == "rater"
    assert manager.delete("/api/projects/demo/members/outsider/").status_code == 204
    assert not Membership.objects.filter(project=project, user=outsider).exists()
    assert manager.post("/api/projects/demo/members/", {"username": "ghost"}, format="json").json() == {"username": ["no such user"]}
    response = manager.patch("/api/projects/demo/members/owner/", {"role": "rater"}, format="json")
    assert response.status_code == 400 and "role" in response.json()
    assert api_for(member).delete("/api/projects/demo/members/owner/").status_code == 403
