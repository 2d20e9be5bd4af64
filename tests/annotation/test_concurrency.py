"""The lease rules under real concurrency: threads, each with its own database connection,
asking and answering at the same instant, on SQLite and on PostgreSQL.

SQLite: pytest-django's default SQLite test database lives in memory in shared-cache mode,
where a second writer fails at once with "database table is locked" (shared-cache locks do not
wait on the busy timeout). These tests therefore move the `default` connection to a fresh
SQLite *file* for their duration (the `threaded_db` fixture): the production settings apply
(WAL, IMMEDIATE transactions, a 30 s busy timeout), and the tests prove they are enough for
writers to queue instead of failing. PostgreSQL runs against the ordinary test database.
Run the PostgreSQL variants with DATABASE_URL=postgres://... (CI does).
"""
from __future__ import annotations

import random
import threading
from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection, connections
from django.db.models import Count

from annotation.assignment import lease_next
from annotation.judgments import judgment_submit
from annotation.kinds import Kind
from annotation.models import Assignment, Candidate, Item, Judgment, Membership, Project, Role

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request):
    if connection.vendor != request.param:
        pytest.skip(f"runs on {request.param}; this run uses {connection.vendor}")
    return request.param


@pytest.fixture
def threaded_db(backend, transactional_db, tmp_path):
    """A database every thread can open: PostgreSQL as it is, SQLite moved to a file."""
    memory = connections["default"]
    if backend != "sqlite" or not memory.is_in_memory_db():
        yield
        return
    original = connections.settings["default"]
    connections.settings["default"] = {**original, "NAME": str(tmp_path / "threads.sqlite3")}
    on_file = connections.create_connection("default")
    connections["default"] = on_file
    try:
        call_command("migrate", run_syncdb=True, verbosity=0, interactive=False)
        yield
    finally:
        on_file.close()
        connections["default"] = memory
        connections.settings["default"] = original


@pytest.fixture(params=list(Project.Selection.values))
def selection(request):
    """Every rule must hold whatever the next-item order (annotation/selection.py)."""
    return request.param


def make_project(*, overlap: int, items: int, raters: int, kind: str = Kind.BINARY, selection: str = Project.Selection.FEWEST) -> tuple[Project, list]:
    project = Project.objects.create(slug="race", name="Race", kind=kind, overlap=overlap, selection=selection)
    User = get_user_model()
    # No password hashing: 40 users with PBKDF2 would take longer than the race itself.
    User.objects.bulk_create([User(username=f"rater{i}", password="!") for i in range(raters)])
    users = list(User.objects.filter(username__startswith="rater").order_by("id"))
    Membership.objects.bulk_create([Membership(project=project, user=u, role=Role.RATER) for u in users])
    # fewest: all 0; random: drawn; uncertain: margins as a reward model would store them, with ties.
    rng = random.Random(items)
    priority = {"fewest": lambda: 0.0, "random": rng.random, "uncertain": lambda: round(rng.random(), 1)}[selection]
    Item.objects.bulk_create([Item(project=project, external_id=f"i{i}", prompt=f"Q{i}?", priority=priority()) for i in range(items)])
    Candidate.objects.bulk_create(
        [Candidate(item=item, position=p, text=f"A{p}") for item in Item.objects.filter(project=project) for p in range(2)]
    )
    return project, users


def run_threads(target, args_list) -> tuple[list, list]:
    """Run target(*args) in one thread per args, all released at the same instant.
    Returns (results, errors); each thread closes its own connection."""
    barrier = threading.Barrier(len(args_list))
    results, errors = [], []
    lock = threading.Lock()

    def body(*args):
        try:
            barrier.wait(timeout=60)
            out = target(*args)
            with lock:
                results.append(out)
        except BaseException as exc:  # noqa: BLE001 - every failure is reported by the test
            with lock:
                errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=body, args=args) for args in args_list]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return results, errors


def assert_within_overlap(project: Project) -> None:
    over = Judgment.objects.filter(project=project).values("item").annotate(n=Count("id")).filter(n__gt=project.overlap)
    assert not over.exists(), list(over)
    twice = Assignment.objects.filter(project=project).values("item", "rater").annotate(n=Count("id")).filter(n__gt=1)
    assert not twice.exists()
    for item in Item.objects.filter(project=project):
        live = Assignment.objects.filter(item=item, status=Assignment.Status.ACTIVE).count()
        assert item.taken == item.judgment_count + live, "the slot counter drifted"
        assert item.judgment_count == Judgment.objects.filter(item=item).count()


def test_it_never_leases_an_item_beyond_its_overlap_when_everyone_asks_at_once(threaded_db, selection):
    project, users = make_project(overlap=2, items=3, raters=16, selection=selection)

    def ask(user):
        lease = lease_next(project=project, rater=user)
        return None if lease is None else lease.item_id

    results, errors = run_threads(ask, [(u,) for u in users])
    assert errors == []
    granted = [r for r in results if r is not None]
    # Three items, two raters each: exactly six leases, two per item, ten raters told "nothing left".
    assert Counter(granted) == Counter({i: 2 for i in Item.objects.filter(project=project).values_list("id", flat=True)})
    assert results.count(None) == 10
    assert_within_overlap(project)


def test_it_keeps_every_rule_while_raters_label_flat_out(threaded_db, selection):
    project, users = make_project(overlap=2, items=12, raters=12, selection=selection)

    def label(user):
        done, acknowledged = [], []
        while True:
            lease = lease_next(project=project, rater=user)
            if lease is None:
                return done, acknowledged
            done.append(lease.item_id)
            judgment, created = judgment_submit(
                assignment=lease, rater=user, value={"winner": len(done) % 2}, client_key=f"{user.id}-{lease.id}"
            )
            acknowledged.append(judgment.id)

    results, errors = run_threads(label, [(u,) for u in users])
    assert errors == []
    for done, _ in results:
        assert len(done) == len(set(done)), "a rater got the same item twice"
    acknowledged = [j for _, acks in results for j in acks]
    # Every item got exactly its overlap, and every acknowledged judgment is stored.
    assert sorted(Item.objects.filter(project=project).values_list("judgment_count", flat=True)) == [2] * 12
    assert set(acknowledged) == set(Judgment.objects.values_list("id", flat=True))
    assert len(acknowledged) == 24
    assert_within_overlap(project)


def test_it_stores_a_double_submit_once_when_the_repeats_race(threaded_db, selection):
    project, users = make_project(overlap=1, items=2, raters=1, selection=selection)
    rater = users[0]
    lease = lease_next(project=project, rater=rater)

    def submit(_):
        # Each thread loads its own copy, as separate requests would.
        mine = Assignment.objects.select_related("project", "item").get(id=lease.id)
        judgment, created = judgment_submit(assignment=mine, rater=rater, value={"winner": 1}, client_key="double-click")
        return judgment.id, created

    results, errors = run_threads(submit, [(n,) for n in range(8)])
    assert errors == []
    assert len({jid for jid, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert Judgment.objects.count() == 1
    assert Item.objects.get(id=lease.item_id).judgment_count == 1
    assert_within_overlap(project)


def test_it_gives_one_rater_one_lease_when_their_tabs_ask_at_once(threaded_db, selection):
    project, users = make_project(overlap=3, items=5, raters=1, selection=selection)
    rater = users[0]
    results, errors = run_threads(lambda _: lease_next(project=project, rater=rater).id, [(n,) for n in range(6)])
    assert errors == []
    # Every tab is shown the same lease: asking again before answering is not a new claim.
    assert len(set(results)) == 1
    assert Assignment.objects.filter(rater=rater).count() == 1
    assert_within_overlap(project)
