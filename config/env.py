"""Strict environment parsing: the one place that reads os.environ.

A typo in a variable must stop the process at start with a message that names
the variable, not surface later as a confusing runtime error.
"""
from __future__ import annotations

import os
from pathlib import Path


class EnvError(RuntimeError):
    pass


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None else value


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    low = value.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise EnvError(f"{name}={value!r} is not a boolean (use one of: 1/0, true/false, yes/no, on/off)")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise EnvError(f"{name}={value!r} is not an integer") from None
    if minimum is not None and number < minimum:
        raise EnvError(f"{name}={number} must be at least {minimum}")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [part.strip() for part in value.split(",") if part.strip()]


def env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def env_paths(name: str, default: list[Path]) -> list[Path]:
    """A comma-separated list of absolute folders. A relative entry would depend on the directory
    the process happened to start in, so it stops the start instead of meaning something else."""
    value = os.environ.get(name)
    if value is None:
        return default
    paths = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        path = Path(part).expanduser()
        if not path.is_absolute():
            raise EnvError(f"{name}: {part!r} is not an absolute path (list folders like /srv/models,/data/inbox)")
        paths.append(path.resolve())
    return paths


def env_url(name: str, schemes: tuple[str, ...]) -> str | None:
    value = os.environ.get(name)
    if not value:
        return None
    scheme = value.split("://", 1)[0] if "://" in value else ""
    if scheme not in schemes:
        raise EnvError(f"{name} must start with one of {', '.join(s + '://' for s in schemes)}; got {value.split('://')[0]!r}")
    return value


_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


def env_rate(name: str, default: str) -> tuple[int, int]:
    """A rate like `600/minute` as (count, seconds); `off` or `0` is (0, 1): no limit."""
    value = os.environ.get(name, default).strip().lower()
    if value in ("off", "0", "none"):
        return 0, 1
    count, _, period = value.partition("/")
    try:
        number = int(count)
    except ValueError:
        raise EnvError(f"{name}={value!r} is not a rate like 600/minute (or off)") from None
    if number < 1 or period not in _PERIODS:
        raise EnvError(f"{name}={value!r} is not a rate like 600/minute (or off); periods: second, minute, hour, day")
    return number, _PERIODS[period]
