"""The one catalog of training methods (DESIGN.md, "Training").

A method is one module under `training/recipes/` that calls `register(Recipe(...))` at import
time, and one line in `RECIPE_MODULES` below. The runner, the start form, the API serializer,
the admin and the run page read what a recipe declares here and never name a method.

This module imports no torch: the web process reads it to build forms and validate runs.

The contract between the runner (how a run is launched and supervised) and a recipe module
(what it trains):

    def train(ctx: TrainContext) -> dict

runs in the training process (every rank of a multi-process run calls it), trains, evaluates,
saves the final model into `ctx.out_dir` (rank 0 only) and returns the run's `result` dict
(at least `test` with the evaluation and `global_step`; `samples` when the method has them).
It reports through `ctx.progress` and stops early by raising whatever `ctx.progress.check()`
raises. Hugging Face trainers get `ctx.callbacks` (heartbeat, metrics, cancel).
"""
from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

# method -> module; importing the module registers its Recipe. Order is the order of the start form.
RECIPE_MODULES: dict[str, str] = {
    "reward": "training.recipes.reward",
    "multi_reward": "training.recipes.multi_reward",
    "dpo": "training.recipes.dpo",
    "sft": "training.recipes.sft",
    "kto": "training.recipes.kto",
    "ppo": "training.recipes.ppo",
    "rloo": "training.recipes.rloo",
    "grpo": "training.recipes.grpo",
}

_RECIPES: dict[str, "Recipe"] = {}


@dataclass(frozen=True)
class Metric:
    """A curve the run page charts: `key` in the metric points, how to label and draw it."""

    key: str
    label: str
    chart: str = "line"  # "line" (per step) or "bar"
    higher_is_better: bool | None = None
    # Names the trainer logs this value under (TRL: "rewards/accuracies"); empty: the key itself.
    sources: tuple[str, ...] = ()
    # Curves with the same group share one chart (e.g. "Loss"); empty: the label.
    group: str = ""

    def names(self) -> tuple[str, ...]:
        return self.sources or (self.key,)


# Every Hugging Face trainer logs these; a recipe's own metrics come after them.
COMMON_METRICS: tuple[Metric, ...] = (
    Metric("loss", "Training loss", higher_is_better=False, group="Loss"),
    Metric("learning_rate", "Learning rate", group="Learning rate"),
    Metric("grad_norm", "Gradient norm", group="Gradient norm"),
)


@dataclass(frozen=True)
class Recipe:
    method: str  # "reward", "dpo", "sft", "kto", "ppo", "rloo", "grpo", ...
    label: str  # shown in forms: "Reward model", "DPO policy", ...
    description: str  # one sentence for the start form: what it trains and from what
    config_class: type  # a TrainConfig dataclass (training/recipes/base.py)
    reads: str  # snapshot format it consumes: "preference" | "unpaired" | "sft" | "prompts" | "attributes"
    base_kinds: tuple[str, ...]  # ModelArtifact.Kind values accepted as the base model
    produces: str  # ModelArtifact.Kind of the output
    module: str  # dotted path of the module with train(ctx)
    metrics: tuple[Metric, ...] = ()
    needs_reward_model: bool = False  # online methods (PPO, RLOO, GRPO) score rollouts with one
    min_train_rows: int = 1
    evaluates: str = ""  # one sentence for the run page and the README: what the test-split figures mean
    row_noun: str = "rows"  # what a row of `reads` is called in messages: "pairs", "rows", "demonstrations", "prompts"

    def all_metrics(self) -> tuple[Metric, ...]:
        """Loss first, then the recipe's own curves, then learning rate and gradient norm."""
        own = {m.key for m in self.metrics}
        common = [m for m in COMMON_METRICS if m.key not in own]
        return tuple(common[:1]) + tuple(self.metrics) + tuple(common[1:])

    def train_fn(self):
        return importlib.import_module(self.module).train


class Progress(Protocol):
    def say(self, line: str) -> None: ...  # a line in the run's log (rank 0 writes, others drop)
    def metrics(self, point: dict) -> None: ...  # {"step": n, "loss": ..., ...} for the charts
    def steps(self, *, step: int, total: int | None = None) -> None: ...
    def check(self) -> None: ...  # raises when the run was cancelled or taken over
    def should_stop(self) -> bool: ...  # the same, as a flag for loops that stop cleanly
    # Optional (callers use getattr): record a saved checkpoint on the run row.
    # def checkpoint(self, *, path: Path, step: int) -> None: ...


@dataclass
class TrainContext:
    run_id: int
    method: str
    config: dict  # validated values (auto fields still None: resolve with config_resolve)
    use_lora: bool
    snapshot_dir: Path  # the snapshot folder, read exactly as a researcher would
    base_model_path: Path
    base_model_name: str
    out_dir: Path  # where rank 0 saves the final model (a per-attempt folder; the runner renames it)
    checkpoint_dir: Path  # where checkpoints go and are resumed from
    work_dir: Path  # scratch (datasets cache, ...)
    progress: Any  # a Progress
    callbacks: list = field(default_factory=list)  # transformers TrainerCallbacks for HF trainers
    reward_model_path: Path | None = None  # online methods
    reward_model_is_adapter: bool = False
    extra: dict = field(default_factory=dict)


def register(recipe: Recipe) -> Recipe:
    _RECIPES[recipe.method] = recipe
    return recipe


# The base models a policy method starts from: a language model, or a policy trained before.
POLICY_BASES: tuple[str, ...] = ("causal_lm", "policy")


def register_policy(**fields) -> Recipe:
    """Register a method that tunes a language model into a policy (DPO, SFT, KTO and the online
    methods): what they all declare alike is filled in, the rest is the method's own."""
    return register(Recipe(base_kinds=POLICY_BASES, produces="policy", **fields))


def _modules() -> dict[str, str]:
    """RECIPE_MODULES, plus methods of the deployment's own packages (settings.ARBITER_EXTRA_RECIPES,
    "method=package.module,..."): read from the settings, so a training child process, which
    inherits the worker's environment, finds them too."""
    try:
        from django.conf import settings
    except ImportError:  # benchmarks import the recipes on machines without Django
        return dict(RECIPE_MODULES)

    extra = {}
    # Without configured settings (a benchmark): no extra methods.
    configured = getattr(settings, "ARBITER_EXTRA_RECIPES", "") if settings.configured else ""
    for entry in filter(None, (configured or "").split(",")):
        method, _, module = entry.strip().partition("=")
        extra[method.strip()] = module.strip()
    return {**RECIPE_MODULES, **extra}


def _load_all() -> None:
    for module in _modules().values():
        importlib.import_module(module)


def get(method: str) -> Recipe:
    modules = _modules()
    if method not in _RECIPES and method in modules:
        importlib.import_module(modules[method])
    try:
        return _RECIPES[method]
    except KeyError:
        raise KeyError(f"{method!r} has no training recipe yet (available: {', '.join(r.method for r in all_recipes())})") from None


def all_recipes() -> list[Recipe]:
    """Every method, in RECIPE_MODULES order (then any registered by other means, e.g. a test)."""
    _load_all()
    listed = [_RECIPES[m] for m in RECIPE_MODULES if m in _RECIPES]
    return listed + [r for m, r in _RECIPES.items() if m not in RECIPE_MODULES]


def readers_by_format() -> dict[str, list[str]]:
    """Snapshot format -> the labels of the methods that read it (annotation.hooks.format_readers:
    the dataset card names them without naming a method)."""
    out: dict[str, list[str]] = {}
    for recipe in all_recipes():
        out.setdefault(recipe.reads, []).append(recipe.label)
    return out


def choices() -> list[tuple[str, str]]:
    """(method, label) for forms and the API."""
    return [(r.method, r.label) for r in all_recipes()]


def label(method: str) -> str:
    try:
        return get(method).label
    except KeyError:
        return method


def unregister(method: str) -> None:
    """For tests that register a recipe of their own."""
    _RECIPES.pop(method, None)


def as_dict(recipe: Recipe) -> dict:
    """What the API and the start form's script see of a recipe."""
    out = dataclasses.asdict(recipe)
    out.pop("config_class")
    out["metrics"] = [dataclasses.asdict(m) for m in recipe.all_metrics()]
    return out
