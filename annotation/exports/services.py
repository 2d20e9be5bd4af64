"""Creating a snapshot row: the next version number, safely under concurrency."""
from __future__ import annotations

from typing import Iterable

from django.db import IntegrityError, transaction
from django.db.models import Max

from annotation.exports.options import SnapshotOptions
from annotation.models import DatasetSnapshot, Project

VERSION_RETRIES = 10


def snapshot_create(
    *,
    project: Project,
    options: dict | None,
    created_by=None,
    extra_projects: Iterable[Project] = (),
    enqueue: bool = True,
) -> DatasetSnapshot:
    """A queued snapshot with the project's next version number; the build task is enqueued
    once the transaction commits. Raises OptionsError (field -> message) for bad options.

    Two researchers pressing "build" at once both read the same max(version); the unique
    (project, version) constraint lets one win and the other retries with the next number.
    """
    opts = SnapshotOptions.from_dict(options)
    extra = [p for p in extra_projects if p.id != project.id]
    for attempt in range(VERSION_RETRIES):
        version = (DatasetSnapshot.objects.filter(project=project).aggregate(v=Max("version"))["v"] or 0) + 1
        try:
            with transaction.atomic():
                snapshot = DatasetSnapshot.objects.create(project=project, version=version, options=opts.as_dict(), created_by=created_by)
                if extra:
                    snapshot.extra_projects.set(extra)
        except IntegrityError:
            if attempt == VERSION_RETRIES - 1:
                raise
            continue
        if enqueue:
            from annotation.tasks import snapshot_build

            transaction.on_commit(lambda snapshot_id=snapshot.id: snapshot_build.delay(snapshot_id))
        return snapshot
    raise RuntimeError("unreachable")
