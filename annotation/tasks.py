"""Celery tasks of the annotation app: thin, they load a row and call one service.
A message may arrive twice or late; the services look at the row and do the right thing."""
from celery import shared_task


@shared_task(name="annotation.import_batch_run")
def import_batch_run(batch_id: int) -> None:
    from annotation.importers import import_batch_run as run

    run(batch_id=batch_id)


@shared_task(name="annotation.imports_recover")
def imports_recover() -> list[int]:
    from annotation.importers.liveness import imports_recover as recover

    return recover()


@shared_task(name="annotation.snapshot_build")
def snapshot_build(snapshot_id: int) -> None:
    from annotation.exports.build import snapshot_build as build

    build(snapshot_id=snapshot_id)


@shared_task(name="annotation.snapshots_recover")
def snapshots_recover() -> list[int]:
    from annotation.exports.build import snapshots_recover as recover

    return recover()


@shared_task(name="annotation.selection_reset")
def selection_reset(project_id: int) -> int:
    # A large project's priorities in one UPDATE, off the web request (annotation/selection.py).
    from annotation.selection import priorities_reset_now

    return priorities_reset_now(project_id=project_id)
