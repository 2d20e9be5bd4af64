"""The role matrix, over every URL of the URLconf.

The URL list is read from Django's resolver, not written by hand: a page or endpoint added
later is covered the moment it lands, and every keyword argument in its route is filled from the
`world` fixture by name (FILLERS). A route with an argument nobody taught FILLERS to fill fails
`test_it_can_fill_every_route`, which says how to add it. For every route:
- an outsider gets 403/404/405 wherever a project (or its run, model, lease, import or snapshot)
  is named, never the project's data, and changes nothing of it, wherever they go;
- an anonymous visitor is sent to the login page (browser) or gets 401/403 (API), except on the
  few PUBLIC routes, which show nothing of a project either;
- the owner (manager) and staff reach every page of the project, its runs and its models;
- a rater gets 403 on the pages meant for researchers or managers, and a researcher on the
  manager-only ones;
- the Django admin sends everyone without staff status to its login page.
"""
from __future__ import annotations

import re

import pytest
from django.forms.models import model_to_dict
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from annotation.assignment import lease_next
from annotation.models import Assignment, Candidate, DatasetSnapshot, ImportBatch, Item, Judgment, Membership, Project
from training.models import Job, JudgeJob, ModelArtifact, TrainingRun
from training.registration.models import RegistrationJob

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # The world has six users; the default hasher costs a second each on a busy machine.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

SECRET_NAME = "Zebra Confidential Project"
SECRET_MODEL = "zebra-confidential-reward-model"
# Text that only someone who can see the project's data could get back.
SECRET_MARKERS = (SECRET_NAME, SECRET_MODEL, "Question 0?", "Answer 0 to p-00000", "Answer 1 to p-00001", "member@example.org")
# Keyword arguments that identify something inside a project, not only the project.
PROJECT_SCOPED_KWARGS = {"slug", "assignment_id", "batch_id", "version", "pk", "user_id", "username", "name"}
# Open without logging in: logging in itself, password reset, the health probe, the API schema.
PUBLIC = {
    "health", "login", "logout", "password_reset", "password_reset_done", "password_reset_confirm",
    "password_reset_complete", "api-token", "schema", "api-docs", "favicon",
}

# Minimum role by URL name, where the product says so (issue 2, DESIGN.md: Roles).
MANAGER_ONLY = {
    "annotation:project-settings",
    "annotation:project-members",
    "annotation:project-import",
    "api-project-members",
    "api-project-member",
    "api-item-import",
    "training:run-new",
    "training:run-cancel",
    "training-run-cancel",
    "api-selection-refresh",
    "annotation:adjudication",
    "annotation:adjudication-item",
    "training:judge-start",
    "training:judge-principles",
}
RESEARCHER_UP = {
    "annotation:dataset-list",
    "annotation:quality",
    "api-project-statistics",
    "api-dataset-list",
    "api-quality",
    "annotation:project-selection",
    "api-selection",
    "training:project-runs",
    "training:run",
    "training:run-metrics",
    "training:run-samples",
    "training-run",
    "training-run-metrics",
    "training:model",
    "training-model",
    "api-quality-ai",
    "training:judge",
    "training-judge-jobs",
}

_KWARG = re.compile(r"<(?:(\w+):)?(\w+)>|\(\?P<(\w+)>[^)]*\)")


def _walk(patterns, prefix: str = "", namespace: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            ns = f"{namespace}:{pattern.namespace}".strip(":") if pattern.namespace else namespace
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern), ns)
        elif isinstance(pattern, URLPattern):
            name = f"{namespace}:{pattern.name}".strip(":") if pattern.name else ""
            yield prefix + str(pattern.pattern), name


def kwargs_of(route: str) -> set[str]:
    return {m.group(2) or m.group(3) for m in _KWARG.finditer(route)}


ALL_ROUTES = list(_walk(get_resolver().url_patterns))
ADMIN = [(r, n) for r, n in ALL_ROUTES if r.startswith("admin/")]
ROUTES = [(r, n) for r, n in ALL_ROUTES if not r.startswith("admin/") and n not in PUBLIC]
# Routes that name something of a project (an outsider gets 403/404 there); the rest are the
# signed-in user's own lists and forms (their projects, their runs, a new project...).
SCOPED = [(r, n) for r, n in ROUTES if kwargs_of(r) & PROJECT_SCOPED_KWARGS]


@pytest.fixture
def world(make_project, add_items, member, owner, researcher):
    """A project full of things an outsider must not see: items, a live lease, a judgment, an
    import batch, a snapshot, a training run and the model it trained."""
    project = make_project(slug="zebra", name=SECRET_NAME)
    add_items(project, 3)
    lease = lease_next(project=project, rater=member)
    other = add_items(make_project(slug="other"), 1)[0]
    Judgment.objects.create(project=project, item=Item.objects.filter(project=project).last(), rater=owner, kind=project.kind, value={"winner": 0})
    batch = ImportBatch.objects.create(project=project, filename="secret.jsonl", status=ImportBatch.Status.SUCCEEDED)
    snapshot = DatasetSnapshot.objects.create(project=project, version=1, status=DatasetSnapshot.Status.READY)
    base = ModelArtifact.objects.create(name="base-lm", kind=ModelArtifact.Kind.CAUSAL_LM, source=ModelArtifact.Source.LOCAL, path="models/base")
    run = TrainingRun.objects.create(
        project=project, snapshot=snapshot, base_model=base, method="reward", created_by=owner,
        status=TrainingRun.Status.SUCCEEDED, metrics=[{"step": 1, "loss": 0.5}],
    )
    trained = ModelArtifact.objects.create(
        name=SECRET_MODEL, kind=ModelArtifact.Kind.REWARD_MODEL, source=ModelArtifact.Source.TRAINED, path="models/zebra-rm",
        base_model=base, run=run, snapshot=snapshot,
    )
    judge_job = JudgeJob.objects.create(project=project, model=trained)
    job = Job.objects.create(kind=Job.Kind.EVALUATION, policy=trained, project=project, created_by=owner)
    registration = RegistrationJob.objects.create(name="zebra-folder", source="folder", created_by=owner)
    return {
        "project": project, "lease": lease, "batch": batch, "snapshot": snapshot, "other_item": other, "member": member,
        "run": run, "model": trained, "judge_job": judge_job, "job": job,
        "registration": registration,
    }


def _pk(route: str, world) -> str:
    """`pk` means a different thing under each prefix."""
    if "runs/" in route:
        return str(world["run"].id)
    if "judge" in route:
        return str(world["judge_job"].id)
    if re.search(r"(^|/)jobs/<", route):  # training/jobs/<pk>/, not models/<pk>/jobs/
        return str(world["job"].id)
    if "registrations/" in route:  # training/models/registrations/<pk>/: the owner's registration job
        return str(world["registration"].id)
    if "models/" in route:
        return str(world["model"].id)
    if "imports/" in route or "import/" in route:
        return str(world["batch"].id)
    if "items/" in route:
        return str(Item.objects.filter(project=world["project"]).order_by("id").first().id)
    raise LookupError("pk")


# How to fill each URL keyword argument with something real of the world (by name). A new
# route with a new argument needs an entry here, returning an id (or name) of an object in
# `world` (add the object to the fixture if it is of a new kind).
FILLERS = {
    "slug": lambda route, w: w["project"].slug,
    "assignment_id": lambda route, w: str(w["lease"].id),
    "batch_id": lambda route, w: str(w["batch"].id),
    "version": lambda route, w: str(w["snapshot"].version),
    "user_id": lambda route, w: str(w["member"].id),
    "username": lambda route, w: w["member"].username,
    "pk": _pk,
    "name": lambda route, w: "manifest.json" if "files/" in route else "agreement",
    "part": lambda route, w: "candidate-0",
    "step": lambda route, w: "1",  # a checkpoint step of the run (none kept: the pages say so)
    "judgment_id": lambda route, w: str(Judgment.objects.filter(project=w["project"]).first().id),
    "item_id": lambda route, w: str(Item.objects.filter(project=w["project"]).order_by("id").first().id),
    # Django's own: the admin and password reset.
    "object_id": lambda route, w: "1",
    "content_type_id": lambda route, w: "1",
    "id": lambda route, w: "1",
    "app_label": lambda route, w: "annotation",
    "url": lambda route, w: "nowhere/",
    "uidb64": lambda route, w: "MQ",
    "token": lambda route, w: "set-password",
}


def fill(route: str, world) -> str:
    """A concrete URL for a route, pointing at real objects of the project."""

    def value(match: re.Match) -> str:
        name = match.group(2) or match.group(3)
        return FILLERS[name](route, world)

    url = _KWARG.sub(value, route)
    return "/" + url.lstrip("^").rstrip("$")


def test_it_can_fill_every_route():
    missing = [
        f"{route} ({name or 'unnamed'}) has <{kwarg}>, which tests/annotation/test_roles.py cannot fill: add an entry "
        f"'{kwarg}' to FILLERS returning the id of an object in the `world` fixture (add the object there if it is new)"
        for route, name in ALL_ROUTES
        for kwarg in sorted(kwargs_of(route) - FILLERS.keys())
    ]
    assert not missing, "\n".join(missing)
    unnamed = [route for route, name in ALL_ROUTES if not name and not route.startswith("admin/")]
    assert not unnamed, f"routes without a name cannot be put in MANAGER_ONLY/RESEARCHER_UP/PUBLIC: {unnamed}"


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
    """Everything of the zebra project someone could change (other users may create their own
    projects through the routes that are not scoped: that is not a change to zebra)."""
    zebra = Project.objects.get(slug="zebra")
    return {
        "counts": [m.objects.filter(project=zebra).count() for m in (Item, Assignment, Judgment, Membership, ImportBatch, DatasetSnapshot, TrainingRun)],
        "candidates": Candidate.objects.filter(item__project=zebra).count(),
        "project": model_to_dict(zebra),
        "leases": list(Assignment.objects.filter(project=zebra).order_by("id").values_list("id", "status", "expires_at")),
        "memberships": list(Membership.objects.filter(project=zebra).order_by("id").values_list("id", "user_id", "role", "paused")),
        "snapshots": list(DatasetSnapshot.objects.filter(project=zebra).order_by("id").values_list("id", "status", "path")),
        "runs": list(TrainingRun.objects.filter(project=zebra).values_list("id", "status", "cancel_requested")),
        "models": list(ModelArtifact.objects.order_by("id").values_list("id", "name", "path")),
    }


def test_it_finds_the_urls_of_every_app():
    routes = {route for route, _ in ROUTES}
    # The matrix is only as good as its list: it must see the browser pages, the API and training.
    assert "projects/<slug:slug>/" in routes and "api/projects/<slug:slug>/" in routes
    assert "projects/<slug:slug>/members/" in routes and "api/projects/<slug:slug>/members/" in routes
    assert "training/runs/<id:pk>/" in routes and "api/training/models/<id:pk>/" in routes
    assert len(ADMIN) > 20 and len(SCOPED) > 30


# One test per rule, looping over every route and reporting every failure at once: a test per
# route would build the world again for each of them (minutes on a shared CPU).

WRITE_DATA = {"name": "pwned", "role": "manager", "username": "outsider", "overlap": 50}


def test_it_shows_an_outsider_nothing_and_lets_them_change_nothing(world, outsider):
    failures = []
    before = state()
    for route, _ in ROUTES:
        url = fill(route, world)
        api = route.startswith("api/")
        scoped = bool(kwargs_of(route) & PROJECT_SCOPED_KWARGS)
        for method in ("get", "post", "put", "patch", "delete"):
            extra = {"format": "json"} if api and method != "get" else {}
            response = getattr(client(outsider, api), method)(url, {} if method == "get" else WRITE_DATA, **extra)
            if scoped and response.status_code not in (403, 404, 405):
                failures.append(f"{method.upper()} {url} gave {response.status_code} to an outsider")
            elif response.status_code >= 500:
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
    for route, name in ROUTES + [(r, n) for r, n in ALL_ROUTES if n in PUBLIC]:
        url = fill(route, world)
        api = route.startswith("api/")
        for method in ("get", "post"):
            response = getattr(client(None, api), method)(url)
            allowed = (401, 403, 405) if api else (302, 403, 404, 405)
            if name in PUBLIC:
                if response.status_code >= 500 and not (name == "health" and response.status_code == 503):
                    failures.append(f"{method.upper()} {url} gave {response.status_code} to an anonymous visitor")
            elif response.status_code not in allowed:
                failures.append(f"{method.upper()} {url} gave {response.status_code} to an anonymous visitor")
            elif response.status_code == 302 and not response["Location"].startswith("/accounts/login/"):
                failures.append(f"{method.upper()} {url} sent an anonymous visitor to {response['Location']}")
            failures += [f"{method.upper()} {url} showed {m!r} anonymously" for m in SECRET_MARKERS if m in body(response)]
    assert state() == before
    assert not failures, "\n".join(failures)


def _reach(user, route: str, url: str) -> int:
    """Status of the natural request: GET, or POST where the endpoint takes only writes."""
    c = client(user, route.startswith("api/"))
    status = c.get(url).status_code
    return c.post(url, {}).status_code if status == 405 else status


# Routes whose world object has nothing to show even to its owner (no files on disk): 404 is right.
OWNER_404 = {"annotation:dataset-file", "api-dataset-file", "annotation:dataset-download", "api-dataset-archive",
             # A rater's own lease and own judgments: nobody else's, staff included.
             "annotation:label-text", "annotation:my-judgment"}
# Not a page of the project: creating projects takes the add_project permission (staff have it).
OWNER_403 = {"annotation:project-new"}


def test_it_lets_the_owner_and_staff_reach_every_page(world, owner, staff):
    failures = []
    for route, name in ROUTES:
        url = fill(route, world)
        for user in (owner, staff):
            response = client(user, route.startswith("api/")).get(url)
            allowed = (200, 302, 405) + ((404,) if name in OWNER_404 else ()) + ((403,) if name in OWNER_403 and user == owner else ())
            if response.status_code not in allowed:
                failures.append(f"GET {url} gave {response.status_code} to {user.username}")
    assert not failures, "\n".join(failures)


def test_it_keeps_raters_and_researchers_to_their_role(world, member, researcher):
    failures = []
    checked = 0
    for route, name in ROUTES:
        url = fill(route, world)
        rater_status = _reach(member, route, url)
        if rater_status >= 500:
            failures.append(f"a rater got {rater_status} from {url}")
        if name not in MANAGER_ONLY | RESEARCHER_UP:
            continue
        checked += 1
        if rater_status != 403:
            failures.append(f"a rater got {rater_status} from {url}")
        status = _reach(researcher, route, url)
        if name in MANAGER_ONLY and status != 403:
            failures.append(f"a researcher got {status} from manager-only {url}")
        if name in RESEARCHER_UP and (status in (403, 404) or status >= 500):
            failures.append(f"a researcher got {status} from {url}")
    assert checked >= 15
    assert not failures, "\n".join(failures)


def test_it_keeps_everyone_but_staff_out_of_the_admin(world, owner, member, outsider, staff):
    failures = []
    for route, _ in ADMIN:
        url = fill(route, world)
        if url in ("/admin/login/", "/admin/logout/"):
            continue
        for user in (owner, member, outsider):
            response = client(user, False).get(url)
            if not (response.status_code in (302, 404) and response.get("Location", "/admin/login/").startswith("/admin/login/")):
                failures.append(f"GET {url} gave {response.status_code} to {user.username} ({response.get('Location')})")
            failures += [f"GET {url} showed {m!r} to {user.username}" for m in SECRET_MARKERS if m in body(response)]
    assert client(staff, False).get("/admin/").status_code == 200
    assert not failures, "\n".join(failures)


def test_it_lets_a_rater_open_the_overview_and_the_labelling_page(world, member, client_for):
    page = client_for(member).get("/projects/zebra/")
    assert page.status_code == 200 and SECRET_NAME in page.content.decode()
    assert client_for(member).get("/projects/zebra/label/").status_code == 200
