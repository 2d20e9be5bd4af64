"""A snapshot build runs once even when its message is delivered twice (annotation/exports/build.py):
a delivery that finds a live build (a fresh heartbeat) leaves it to its owner, and a build whose
worker died (a stale heartbeat) is taken over."""
from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from annotation.exports import build as build_module
from annotation.exports import snapshot_create
from annotation.exports.build import STALE_SECONDS, snapshot_build, snapshot_dir, snapshots_recover
from annotation.models import DatasetSnapshot
from tests.annotation.test_snapshots import judge


def _judged_project(make_project, add_items, member):
    project = make_project()
    for item in add_items(project, 4):
        judge(project, item, member, {"winner": 0})
    return project


def test_it_builds_once_when_the_message_arrives_again_during_the_build(make_project, add_items, member, monkeypatch):
    project = _judged_project(make_project, add_items, member)
    snapshot = snapshot_create(project=project, options={}, created_by=None, enqueue=False)
    original, builds, nested = build_module._build_into, [], []

    def build_into(snap, folder):
        builds.append(snap.id)
        if len(builds) == 1:  # the broker delivers the same message again while this build runs
            nested.append(snapshot_build(snapshot_id=snap.id))
        return original(snap, folder)

    monkeypatch.setattr(build_module, "_build_into", build_into)
    done = snapshot_build(snapshot_id=snapshot.id)
    assert builds == [snapshot.id]  # one build, not two
    assert nested[0].status == DatasetSnapshot.Status.BUILDING  # the second delivery saw the live build and left
    assert done.status == DatasetSnapshot.Status.READY and (snapshot_dir(done) / "manifest.json").is_file()


def test_it_takes_over_a_build_whose_worker_died(make_project, add_items, member, django_capture_on_commit_callbacks):
    project = _judged_project(make_project, add_items, member)
    snapshot = snapshot_create(project=project, options={}, created_by=None, enqueue=False)
    dead = timezone.now() - timedelta(seconds=STALE_SECONDS + 5)
    DatasetSnapshot.objects.filter(pk=snapshot.pk).update(status=DatasetSnapshot.Status.BUILDING, heartbeat_at=dead, progress=0.4)
    with django_capture_on_commit_callbacks(execute=True):
        assert snapshots_recover() == [snapshot.pk]
    snapshot.refresh_from_db()
    assert snapshot.status == DatasetSnapshot.Status.READY and snapshot.progress == 1.0


def test_it_leaves_a_live_build_alone(make_project, add_items, member):
    project = _judged_project(make_project, add_items, member)
    snapshot = snapshot_create(project=project, options={}, created_by=None, enqueue=False)
    DatasetSnapshot.objects.filter(pk=snapshot.pk).update(status=DatasetSnapshot.Status.BUILDING, heartbeat_at=timezone.now(), progress=0.4)
    assert snapshots_recover() == []
    again = snapshot_build(snapshot_id=snapshot.pk)
    assert again.status == DatasetSnapshot.Status.BUILDING and again.progress == 0.4 and not snapshot_dir(again).exists()
