"""python manage.py export_dataset --project SLUG [--project SLUG2] --out DIR [options]

Builds a snapshot synchronously (no worker needed) and copies its folder to DIR. The snapshot
is also recorded in the project like one built from the browser."""
from __future__ import annotations

import shutil
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.exports import OptionsError, snapshot_create
from annotation.exports.build import snapshot_build
from annotation.exports.options import AGGREGATIONS, SnapshotOptions
from annotation.models import Project

_defaults = SnapshotOptions()  # one set of defaults for the command, the browser form and the API


class Command(BaseCommand):
    help = "Build a dataset snapshot of one or more projects and write its folder to --out."

    def add_arguments(self, parser):
        parser.add_argument("--project", action="append", required=True, help="Project slug; repeat to combine projects.")
        parser.add_argument("--out", required=True, help="Folder to write (must not exist, or be empty).")
        parser.add_argument("--sources", default=",".join(_defaults.sources), help="Comma list of human, import, ai (default %(default)s).")
        parser.add_argument("--aggregation", choices=AGGREGATIONS, default=_defaults.aggregation)
        parser.add_argument("--min-agreement", type=float, default=_defaults.min_agreement)
        parser.add_argument("--sft-min-agreement", type=float, default=_defaults.sft_min_agreement)
        parser.add_argument("--drop-ties", action="store_true")
        parser.add_argument("--drop-both-bad", action="store_true")
        parser.add_argument("--keep-gold", action="store_true")
        parser.add_argument("--include-paused", action="store_true", help="Keep judgments of paused raters.")
        parser.add_argument("--test-share", type=float, default=_defaults.test_share)
        parser.add_argument("--seed", type=int, default=_defaults.seed)

    def handle(self, *args, **o):
        out = Path(o["out"])
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise CommandError(f"--out {out}: exists and is not an empty folder")
        projects = []
        for slug in o["project"]:
            project = Project.objects.filter(slug=slug).first()
            if project is None:
                raise CommandError(f"--project {slug}: no such project")
            projects.append(project)
        options = {
            "sources": o["sources"],
            "aggregation": o["aggregation"],
            "min_agreement": o["min_agreement"],
            "sft_min_agreement": o["sft_min_agreement"],
            "keep_ties": not o["drop_ties"],
            "keep_both_bad": not o["drop_both_bad"],
            "keep_gold": o["keep_gold"],
            "exclude_paused": not o["include_paused"],
            "test_share": o["test_share"],
            "seed": o["seed"],
        }
        try:
            snapshot = snapshot_create(project=projects[0], extra_projects=projects[1:], options=options, enqueue=False)
        except OptionsError as exc:
            raise CommandError("; ".join(f"--{k.replace('_', '-')}: {v}" for k, v in exc.errors.items())) from exc
        snapshot = snapshot_build(snapshot_id=snapshot.id)
        if snapshot.status != snapshot.Status.READY:
            raise CommandError(f"build failed: {snapshot.error}")
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            out.rmdir()
        shutil.copytree(snapshot.path, out)
        counts = snapshot.manifest["counts"]
        summary = ", ".join(f"{fmt} {c['train']}/{c['test']}" for fmt, c in counts.items())
        self.stdout.write(f"{snapshot} -> {out} (train/test rows: {summary})")
