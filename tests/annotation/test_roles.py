"""The role matrix, over every URL that reaches into a project.

The URL list is read from Django's resolver, not written by hand: a page or API endpoint added
later with a <slug> (or an id of a lease, import or snapshot of a project) is covered the moment
it lands. For each one:
- an outsider gets 403/404/405 for every method, never the project's data, and changes nothing;
- an anonymous visitor is sent to the login page (browser) or gets 401/403 (API);
- the owner (manager) and staff reach every slug-only page;
- a rater gets 403 on the pages meant for researchers or managers, and a researcher on the
  manager-only ones.
"""
from __future__ import annotations

import re

import pytest
from django.forms.models import model_to_dict
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from annotation.assignment import lease_next
from annotation.models import Assignment, Candidate, DatasetSnapshot, ImportBatch, Item, Judgment, Membership, Project

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # The world has six users; the default hasher costs a second each on a busy machine.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

SECRET_NAME = "Zebra Confidential Project"
# Text that only someone who can see the project's data could get back.
SECRET_MARKERS = (SECRET_NAME, "Question 0?", "Answer 0 to p-00000", "Answer 1 to p-00001", "member@example.org")
# Keyword arguments that identify something inside a project, not only the project.
PROJECT_SCOPED_KWARGS = {"slug", "assignment_id", "batch_id", "version"}

# Minimum role by URL name, where the product says so (issue 2, DESIGN.md: Roles).
MANAGER_ONLY = {
    "annotation:project-settings",
    "annotation:project-members",
    "annotation:project-import",
    "api-project-members",
    "api-project-member",
    "api-item-import",
    "training:judge-start",
    "training:judge-principles",
}
RESEARCHER_UP = {
    "annotation:dataset-list",
    "annotation:quality",
    "api-project-statistics",
    "api-dataset-list",
    "api-quality",
    "api-quality-ai",
    "training:judge",
    "training-judge-jobs",
}


def _walk(patterns, prefix: str = "", namespace: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            ns = f"{namespace}:{pattern.namespace}".strip(":") if pattern.namespace else namespace
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern), ns)
        elif isinstance(pattern, URLPattern):
            name = f"{namespace}:{pattern.name}".strip(":") if pattern.name else ""
            yield prefix + str(pattern.pattern), name


def project_routes() -> list[tuple[str, str]]:
    routes = []
    for route, name in _walk(get_resolver().url_patterns):
        if route.startswith(("admin/", "accounts/")):
            continue
        kwargs = set(re.findall(r"<(?:\w+:)?(\w+)>", route))
        if kwargs & PROJECT_SCOPED_KWARGS:
            routes.append((route, name))
    return routes


ROUTES = project_routes()


@pytest.fixture
def world(make_project, add_items, member, owner):
    """A project full of things an outsider must not see: items, a live lease, a judgment, an
    import batch and a snapshot."""
    project = make_project(slug="zebra", name=SECRET_NAME)
    add_items(project, 3)
    lease = lease_next(project=project, rater=member)
    other = add_items(make_project(slug="other"), 1)[0]
    Judgment.objects.create(project=project, item=Item.objects.filter(project=project).last(), rater=owner, kind=project.kind, value={"winner": 0})
    batch = ImportBatch.objects.create(project=project, filename="secret.jsonl", status=ImportBatch.Status.SUCCEEDED)
    snapshot = DatasetSnapshot.objects.create(project=project, version=1, status=DatasetSnapshot.Status.READY)
    return {"project": project, "lease": lease, "batch": batch, "snapshot": snapshot, "other_item": other, "member": member}


def fill(route: str, world) -> str:
    """A concrete URL for a route, pointing at real objects of the project."""
    project = world["project"]
    first_item = Item.objects.filter(project=project).order_by("id").first()

    def value(match: re.Match) -> str:
        converter, name = match.group(1) or "str", match.group(2)
        if name == "slug":
            return project.slug
        if name == "assignment_id":
            return str(world["lease"].id)
        if name == "batch_id" or (name == "pk" and "import" in route):
            return str(world["batch"].id)
        if name == "version":
            return str(world["snapshot"].version)
        if name in ("user_id",):
            return str(world["member"].id)
        if name == "username":
            return world["member"].username
        if converter == "int":
            return str(first_item.id)
        if converter == "path":
            return "manifest.json"
        return "agreement"

    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", value, route)


def client(user, api: bool):
    if api:
        c = APIClient()
        if user is not None:
            c.force_authenticate(user)
        return c
    from django.test import Client

    c = Client()
    if user is not None:
        c.force_login(user)
    return c


def body(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")
    return response.content.decode(errors="replace")


def state() -> dict:
    return {
        "counts": [m.objects.count() for m in (Project, Item, Candidate, Assignment, Judgment, Membership, ImportBatch, DatasetSnapshot)],
        "project": model_to_dict(Project.objects.get(slug="zebra")),
        "leases": list(Assignment.objects.order_by("id").values_list("id", "status", "expires_at")),
        "memberships": list(Membership.objects.order_by("id").values_list("id", "role", "paused")),
        "snapshots": list(DatasetSnapshot.objects.order_by("id").values_list("id", "status", "path")),
    }


def test_it_finds_the_project_urls_of_every_app():
    routes = {route for route, _ in ROUTES}
    # The matrix is only as good as its list: it must see the browser pages and the API.
    assert "projects/<slug:slug>/" in routes and "api/projects/<slug:slug>/" in routes
    assert "projects/<slug:slug>/members/" in routes and "api/projects/<slug:slug>/members/" in routes
    assert len(routes) >= 5


# One test per rule, looping over every route and reporting every failure at once: a test per
# route would build the world again for each of them (minutes on a shared CPU).

WRITE_DATA = {"name": "pwned", "role": "manager", "username": "outsider", "overlap": 50}


def test_it_shows_an_outsider_nothing_and_lets_them_change_nothing(world, outsider):
    failures = []
    before = state()
    for route, _ in ROUTES:
        url = fill(route, world)
        api = route.startswith("api/")
        for method in ("get", "post", "put", "patch", "delete"):
            extra = {"format": "json"} if api and method != "get" else {}
            response = getattr(client(outsider, api), method)(url, {} if method == "get" else WRITE_DATA, **extra)
            if response.status_code not in (403, 404, 405):
                failures.append(f"{method.upper()} {url} gave {response.status_code} to an outsider")
            text = body(response)
            failures += [f"{method.upper()} {url} showed {m!r} to an outsider" for m in SECRET_MARKERS if m in text]
        if state() != before:
            failures.append(f"an outsider changed something through {url}")
            before = state()
    assert not failures, "\n".join(failures)


def test_it_sends_anonymous_visitors_to_log_in(world):
    failures = []
    before = state()
    for route, _ in ROUTES:
        url = fill(route, world)
        api = route.startswith("api/")
        for method in ("get", "post"):
            response = getattr(client(None, api), method)(url)
            allowed = (401, 403, 405) if api else (302, 403, 404, 405)
            if response.status_code not in allowed:
                failures.append(f"{method.upper()} {url} gave {response.status_code} to an anonymous visitor")
            elif response.status_code == 302 and not response["Location"].startswith("/accounts/login/"):
                failures.append(f"{method.upper()} {url} sent an anonymous visitor to {response['Location']}")
            failures += [f"{method.upper()} {url} showed {m!r} anonymously" for m in SECRET_MARKERS if m in body(response)]
    assert state() == before
    assert not failures, "\n".join(failures)


SLUG_ONLY = [(r, n) for r, n in ROUTES if set(re.findall(r"<(?:\w+:)?(\w+)>", r)) == {"slug"}]


def _reach(user, route: str, url: str) -> int:
    """Status of the natural request: GET, or POST where the endpoint takes only writes."""
    c = client(user, route.startswith("api/"))
    status = c.get(url).status_code
    return c.post(url, {}).status_code if status == 405 else status


def test_it_lets_the_owner_and_staff_reach_every_project_page(world, owner, staff):
    failures = []
    for route, _ in SLUG_ONLY:
        url = fill(route, world)
        for user in (owner, staff):
            response = client(user, route.startswith("api/")).get(url)
            if response.status_code not in (200, 302, 405):
                failures.append(f"GET {url} gave {response.status_code} to {user.username}")
    assert not failures, "\n".join(failures)


def test_it_keeps_raters_and_researchers_to_their_role(world, member, researcher):
    failures = []
    checked = 0
    for route, name in SLUG_ONLY:
        if name not in MANAGER_ONLY | RESEARCHER_UP:
            continue
        checked += 1
        url = fill(route, world)
        if (status := _reach(member, route, url)) != 403:
            failures.append(f"a rater got {status} from {url}")
        status = _reach(researcher, route, url)
        if name in MANAGER_ONLY and status != 403:
            failures.append(f"a researcher got {status} from manager-only {url}")
        if name in RESEARCHER_UP and status in (403, 404):
            failures.append(f"a researcher got {status} from {url}")
    assert checked >= 5
    assert not failures, "\n".join(failures)


def test_it_lets_a_rater_open_the_overview_and_the_labelling_page(world, member, client_for):
    page = client_for(member).get("/projects/zebra/")
    assert page.status_code == 200 and SECRET_NAME in page.content.decode()
    assert client_for(member).get("/projects/zebra/label/").status_code == 200
