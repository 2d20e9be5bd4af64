"""Argument helpers shared by the evaluate_policy, generate_batch and demo_loop commands, and how
they print a rate measured on held-out prompts (n, its Wilson interval, and whether it concludes)."""
from __future__ import annotations

from django.core.management.base import CommandError

from annotation.models import DatasetSnapshot, Project
from training.registry.models import ModelArtifact


def model_named(name: str, option: str) -> ModelArtifact:
    model = ModelArtifact.objects.select_related("base_model").filter(name=name).first()
    if model is None:
        raise CommandError(f"{option}: no registered model {name!r} (see `manage.py add_model`)")
    return model


def prompts_arg(value: str) -> tuple[DatasetSnapshot | None, Project | None]:
    from training.loop.generation import GenerationError
    from training.loop.prompt_sources import prompts_parse

    try:
        return prompts_parse(value)
    except GenerationError as exc:
        raise CommandError(f"--{exc}") from None


def job_run_here(job, stdout) -> None:
    """Run a queued job in this process (no worker needed) and report its outcome."""
    from training.loop.jobs import job_execute

    # With eager Celery (demo_loop) the job already ran when it was queued; then this finds it done.
    outcome = job_execute(job_id=job.pk, worker_name="manage.py")
    job.refresh_from_db()
    if job.status != job.Status.SUCCEEDED:
        raise CommandError(f"{job} {job.status}: {job.error or outcome}")


# A demo or a small held-out split gives a handful of prompts: an interval that spans 0.5 then
# says nothing about which policy is better, and the figure must not be read as if it did.
DECISIVE_HALF_WIDTH = 0.10


def prompts_for_half_width(half_width: float = DECISIVE_HALF_WIDTH, *, confidence: float = 0.95) -> int:
    """Prompts needed for a 95 % interval of ±half_width around a rate of 0.5 (the widest case)."""
    import math
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    return math.ceil(z * z * 0.25 / (half_width * half_width))


def interval_lines(*, what: str, rate: float, n: int, successes: float | None = None, ci: tuple[float, float] | None = None) -> list[str]:
    """What a win rate (or an accuracy) on n held-out prompts lets one say: the rate with n and its
    95 % Wilson interval, then whether the interval lies clear of 0.5 or is too wide to conclude."""
    from training.core.stats import wilson

    low, high = ci if ci is not None else wilson(rate * n if successes is None else successes, n)
    lines = [f"{what}: {rate:.3f} on n={n} held-out prompts, 95% Wilson interval {low:.3f}-{high:.3f}"]
    if n and low > 0.5:
        lines.append(f"{what}: the interval lies above 0.5")
    elif n and high < 0.5:
        lines.append(f"{what}: the interval lies below 0.5")
    else:
        lines.append(f"{what}: the interval is too wide to conclude (it spans 0.5); about {prompts_for_half_width()} held-out "
                     f"prompts would narrow it to ±{DECISIVE_HALF_WIDTH:.2f}")
    return lines
