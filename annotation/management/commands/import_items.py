"""python manage.py import_items --project SLUG PATH [PATH ...]

Imports native JSONL, CSV or TRL preference files (plain or .gz) into a project. Each file is
all or nothing: a file with bad lines imports nothing and every bad line is printed as
PATH:LINE: field: message; the command then exits non-zero. Ids already in the project are
skipped, so running it twice adds nothing.
"""
from __future__ import annotations

import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotation.importers import FORMATS, ImportFailed, import_path
from annotation.kinds import Kind
from annotation.models import Project


class Command(BaseCommand):
    help = "Import items (native JSONL, CSV, TRL preference files; .gz accepted) into a project."

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH")
        parser.add_argument("--project", required=True, help="Project slug.")
        parser.add_argument("--format", choices=FORMATS, default=None, help="Default: from the file name, then the content.")
        parser.add_argument(
            "--as-judgments",
            action="store_true",
            help='Store the preference of TRL records (chosen over rejected) as judgments with source "import".',
        )
        parser.add_argument("--create", action="store_true", help="Create the project when it does not exist (needs --kind).")
        parser.add_argument("--kind", choices=Kind.values, help="Judgment kind of a project made by --create.")
        parser.add_argument("--name", help="Name of a project made by --create (default: the slug).")
        parser.add_argument("--owner", help="Username who becomes manager of a project made by --create.")
        parser.add_argument("--min-k", type=int, help="Ranking project made by --create: fewest responses per item (default 2).")
        parser.add_argument("--max-k", type=int, help="Ranking project made by --create: most responses per item (default 4).")

    def handle(self, *args, paths, project: str, format: str | None, as_judgments: bool, create: bool, kind, name, owner, min_k=None, max_k=None, **options):
        existed = Project.objects.filter(slug=project).exists()
        target = self._project(slug=project, create=create, kind=kind, name=name, owner=owner, min_k=min_k, max_k=max_k)
        try:
            self._import(target, paths=paths, format=format, as_judgments=as_judgments)
        except BaseException:
            # A project this command made stays only if something went into it: a failed
            # import (or Ctrl-C) must not leave an empty project behind.
            if not existed and not target.items.exists():
                target.delete()
                self.stderr.write(f"removed project {target.slug}: nothing was imported into it")
            raise

    def _import(self, target: Project, *, paths, format: str | None, as_judgments: bool) -> None:
        failed = False
        for raw in paths:
            path = Path(raw)
            if not path.is_file():
                self.stderr.write(f"{path}:0: file: no such file")
                failed = True
                continue
            started = time.monotonic()
            try:
                batch = import_path(project=target, path=path, fmt=format, as_judgments=as_judgments)
            except ImportFailed as exc:
                failed = True
                for error in exc.errors:
                    self.stderr.write(f"{path}:{error['line']}: {error['field']}: {error['message']}")
                self.stderr.write(f"{path}: {exc.error_count} bad line(s); nothing imported")
                continue
            seconds = time.monotonic() - started
            line = f"{path}: {batch.items_created} items created, {batch.items_skipped} skipped (already in {target.slug})"
            if as_judgments:
                line += f", {batch.judgments_created} judgments imported"
            self.stdout.write(f"{line}; {batch.lines_read} lines in {seconds:.1f} s")
        if failed:
            raise CommandError("some files were not imported")

    def _project(self, *, slug: str, create: bool, kind, name, owner, min_k=None, max_k=None) -> Project:
        project = Project.objects.filter(slug=slug).first()
        if project is not None:
            if create and kind and project.kind != kind:
                raise CommandError(f"project {slug} exists with kind {project.kind}, not {kind}")
            return project
        if not create:
            raise CommandError(f"no project {slug!r}; add --create --kind KIND to make it")
        if not kind:
            raise CommandError("--create needs --kind (binary, likert, ranking or rating)")
        user = None
        if owner:
            user = get_user_model().objects.filter(username=owner).first()
            if user is None:
                raise CommandError(f"no user {owner!r}")
        from django.core.exceptions import ValidationError

        from annotation.projects import project_create

        fields = {"slug": slug, "name": name or slug, "kind": kind}
        if kind == Kind.RANKING:
            fields.update({k: v for k, v in (("ranking_min_k", min_k), ("ranking_k", max_k)) if v is not None})
        try:
            with transaction.atomic():
                project = project_create(created_by=user, **fields)
        except ValidationError as exc:
            raise CommandError("; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())) from None
        self.stdout.write(f"created {kind} project {slug}" + (f" managed by {owner}" if owner else ""))
        return project
