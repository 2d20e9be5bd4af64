"""python manage.py import_items --project SLUG PATH [PATH ...]

Imports native JSONL, CSV or TRL preference files (plain or .gz) into a project. Each file is
all or nothing: a file with bad lines imports nothing and every bad line is printed as
PATH:LINE: field: message; the command then exits non-zero. With --skip-invalid the good lines
are imported and every bad line is printed the same way (and kept on the import's report), and
the command succeeds. Ids already in the project are skipped, so running it twice adds nothing.

--create makes the project; a ranking project takes its K range (fewest and most responses per
item) from the files unless --min-k/--max-k say otherwise. A HelpSteer-style file (prompt,
response and numeric attribute columns: annotation/importers/attributes.py) makes a rating
project (unless --kind says otherwise) whose questions are the file's attribute columns, each a
per-response scale from the data (HelpSteer's five attributes: 0-4), and whose rating scale is
the helpfulness column's.
"""
from __future__ import annotations

import re
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
        parser.add_argument(
            "--skip-invalid",
            action="store_true",
            help="Import the good lines and list each bad one (PATH:LINE: field: reason) instead of refusing the file.",
        )
        parser.add_argument("--create", action="store_true",
                            help="Create the project when it does not exist (needs --kind, except for a HelpSteer-style file: rating).")
        parser.add_argument("--kind", choices=Kind.values, help="Judgment kind of a project made by --create.")
        parser.add_argument("--name", help="Name of a project made by --create (default: the slug).")
        parser.add_argument("--owner", help="Username who becomes manager of a project made by --create.")
        parser.add_argument("--min-k", type=int, help="Ranking project made by --create: fewest responses per item (default: from the files).")
        parser.add_argument("--max-k", type=int, help="Ranking project made by --create: most responses per item (default: from the files).")

    def handle(self, *args, paths, project: str, format: str | None, as_judgments: bool, create: bool, kind, name, owner, min_k=None, max_k=None,
               skip_invalid: bool = False, **options):
        existed = Project.objects.filter(slug=project).exists()
        extra: dict = {}
        if create and not existed:
            kind, extra = self._attribute_project(paths, format, kind)
        if create and not existed and kind == Kind.RANKING and (min_k is None or max_k is None):
            low, high = self._k_range(paths, format)
            min_k = low if min_k is None else min_k
            max_k = high if max_k is None else max_k
        target = self._project(slug=project, create=create, kind=kind, name=name, owner=owner, min_k=min_k, max_k=max_k, extra=extra)
        self.created = not existed
        try:
            self._import(target, paths=paths, format=format, as_judgments=as_judgments, skip_invalid=skip_invalid)
        except BaseException:
            # A project this command made stays only if something went into it: a failed
            # import (or Ctrl-C) must not leave an empty project behind.
            if not existed and not target.items.exists():
                target.delete()
                self.stderr.write(f"removed project {target.slug}: nothing was imported into it")
            raise

    def _attribute_project(self, paths, format: str | None, kind) -> tuple[str | None, dict]:
        """A project made from HelpSteer-style files: its kind (rating unless --kind says) and its
        questions (one per-response scale per attribute column, the scale from the data)."""
        from annotation.importers.attributes import declare, primary_scale, survey
        from annotation.questions import QuestionsError

        scales: dict = {}
        for raw in paths:
            if Path(raw).is_file() and (found := survey(Path(raw), fmt=format)):
                for column, (low, high, required) in found.items():
                    was = scales.get(column, (low, high, required))
                    scales[column] = (min(was[0], low), max(was[1], high), was[2] and required)
        if not scales:
            return kind, {}
        try:
            declared = declare(scales)
        except QuestionsError as exc:
            columns = list(scales)

            def where(field: str) -> str:
                found = re.match(r"questions\[(\d+)\]", field)
                return f"column {columns[int(found[1])]!r}" if found else field

            raise CommandError("the file's attribute columns cannot be questions: "
                               + "; ".join(f"{where(field)}: {msg}" for field, msg in exc.errors.items())) from None
        kind = kind or Kind.RATING
        extra = {"questions": declared}
        if kind == Kind.RATING:
            # The rating is the helpfulness column (attributes.py); "good" is its top two points.
            key, low, high = primary_scale(scales)
            extra.update({"rating_min": low, "rating_max": high, "rating_threshold": high - 1})
            self.stdout.write(f"the files rate responses on {', '.join(scales)}: the project asks them as questions; "
                              f"the rating is {key} ({low}-{high})")
        return kind, extra

    def _k_range(self, paths, format: str | None) -> tuple[int | None, int | None]:
        """The fewest and most responses per item in the files, within the project's bounds;
        (None, None) where no file says (the project's defaults then)."""
        from annotation.importers import response_counts
        from annotation.models.project import SETTING_BOUNDS

        low = high = None
        for raw in paths:
            if Path(raw).is_file():
                counts = response_counts(Path(raw), fmt=format)
                if counts:
                    low = counts[0] if low is None else min(low, counts[0])
                    high = counts[1] if high is None else max(high, counts[1])
        if low is None:
            return None, None
        floor, ceiling = SETTING_BOUNDS["ranking_k"]
        # Outside the bounds the import itself names the lines; the project still gets made.
        low, high = max(floor, min(low, ceiling)), max(floor, min(high, ceiling))
        self.stdout.write(f"the files have {low} to {high} responses per item: the ranking project takes that range")
        return low, high

    def _k_hint(self, target: Project, path: Path, errors: list[dict], format: str | None) -> str:
        """A ranking file refused for its K: the option (or setting) that fixes it."""
        from annotation.importers import response_counts

        if target.kind != Kind.RANKING or not any(e["field"] == "responses" and "responses per item" in e["message"] for e in errors):
            return ""
        counts = response_counts(path, fmt=format)
        if not counts:
            return ""
        from annotation.models.project import SETTING_BOUNDS

        ceiling = SETTING_BOUNDS["ranking_k"][1]
        if counts[1] > ceiling:
            return (f"{path}: the file has items with up to {counts[1]} responses; a ranking project takes at most {ceiling} "
                    f"(--skip-invalid leaves those items out)")
        low, high = min(counts[0], target.ranking_min_k), max(counts[1], target.ranking_k)
        if self.created:
            return f"{path}: the file has {counts[0]} to {counts[1]} responses per item: pass --min-k {low} --max-k {high}"
        return (f"{path}: the file has {counts[0]} to {counts[1]} responses per item: set the project's fewest/most responses "
                f"per item to {low}/{high} (its settings page, or the API's ranking_min_k/ranking_k)")

    def _import(self, target: Project, *, paths, format: str | None, as_judgments: bool, skip_invalid: bool = False) -> None:
        failed = False
        for raw in paths:
            path = Path(raw)
            if not path.is_file():
                self.stderr.write(f"{path}:0: file: no such file")
                failed = True
                continue
            started = time.monotonic()
            try:
                batch = import_path(project=target, path=path, fmt=format, as_judgments=as_judgments, skip_invalid=skip_invalid)
            except ImportFailed as exc:
                failed = True
                for error in exc.errors:
                    self.stderr.write(f"{path}:{error['line']}: {error['field']}: {error['message']}")
                self.stderr.write(f"{path}: {exc.error_count} bad line(s); nothing imported"
                                  + ("" if skip_invalid else " (--skip-invalid imports the good lines)"))
                if hint := self._k_hint(target, path, exc.errors, format):
                    self.stderr.write(hint)
                continue
            seconds = time.monotonic() - started
            for error in batch.errors if skip_invalid else ():
                self.stderr.write(f"{path}:{error['line']}: {error['field']}: {error['message']} (skipped)")
            if skip_invalid and (hint := self._k_hint(target, path, batch.errors, format)):
                self.stderr.write(hint)
            if skip_invalid and batch.lines_invalid and not (batch.items_created or batch.items_skipped):
                # Every line was bad: "skipping" them all is a refusal, and says so in the exit status.
                self.stderr.write(f"{path}: every line was bad; nothing imported")
                failed = True
                continue
            line = f"{path}: {batch.items_created} items created, {batch.items_skipped} skipped (already in {target.slug})"
            if skip_invalid:
                line += f", {batch.lines_invalid} bad line(s) left out"
            if as_judgments:
                line += f", {batch.judgments_created} judgments imported"
            self.stdout.write(f"{line}; {batch.lines_read} lines in {seconds:.1f} s")
        if failed:
            raise CommandError("some files were not imported")

    def _project(self, *, slug: str, create: bool, kind, name, owner, min_k=None, max_k=None, extra: dict | None = None) -> Project:
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

        fields = {"slug": slug, "name": name or slug, "kind": kind, **(extra or {})}
        if kind == Kind.RANKING:
            fields.update({k: v for k, v in (("ranking_min_k", min_k), ("ranking_k", max_k)) if v is not None})
        try:
            with transaction.atomic():
                project = project_create(created_by=user, **fields)
        except ValidationError as exc:
            raise CommandError("; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())) from None
        self.stdout.write(f"created {kind} project {slug}" + (f" managed by {owner}" if owner else ""))
        return project
