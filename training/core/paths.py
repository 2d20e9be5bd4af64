"""Where artifacts live: registry and snapshot paths are stored relative to ARTIFACT_ROOT (so the
storage can be mounted elsewhere on a GPU machine) or absolute."""
from __future__ import annotations

from pathlib import Path

from django.conf import settings


def artifact_path(path: str | Path) -> Path:
    p = Path(path)
    return p if p.is_absolute() else Path(settings.ARTIFACT_ROOT) / p


def artifact_relative(path: Path) -> str:
    try:
        return str(Path(path).relative_to(Path(settings.ARTIFACT_ROOT)))
    except ValueError:
        return str(path)


def run_dir(run_id: int) -> Path:
    return Path(settings.ARTIFACT_ROOT) / "runs" / str(run_id)
