"""Recipe configs: one dataclass per training method, every hyperparameter with its default and
help text in one place (TRL style). This module imports no torch: the web process reads it to
build forms and to validate a run before it is queued.

A value of None in a field marked "auto" is resolved on the worker, which is the only process
that knows the device (CPU: fp32, no gradient checkpointing; GPU: bf16).
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any


# Shared bounds, so that methods agree on what a token count, a seed or a probability may be.
MAX_TOKENS = 32_768  # any length in tokens: prompt, response, prompt + response
MAX_COUNT = 1_000_000  # steps, samples, prompts: past this, a typo rather than a plan
MAX_BATCH = 4_096
# transformers.set_seed seeds numpy too, whose seeds stop at 2**32 - 1: a larger one fails on the worker.
MAX_SEED = 2**32 - 1
MAX_TEMPERATURE = 5.0  # what evaluation sampling accepts (training.rl.sampling.Sampling)


def _f(default: Any, help: str, *, choices: tuple | None = None, minimum: float | None = None, maximum: float | None = None,
       auto: bool = False, weights: bool = False):
    """One setting: default, help text and, for numbers, the inclusive bounds that validation, the
    run form, the API schema and the admin all read from here. `weights`: a str field that holds
    name=number pairs (attribute weights, training/core/heads.py), given as text or as a JSON
    object; the bounds then apply to each number, and the stored value is the canonical text."""
    return field(default=default, metadata={"help": help, "choices": choices, "minimum": minimum, "maximum": maximum, "auto": auto,
                                            "weights": weights})


def _reworded(base: type, name: str, help: str, **changes: Any):
    """A field of `base` told again in one method's words: the same default, bounds and auto flag
    unless `changes` says otherwise (default=..., minimum=..., maximum=...), so a method restates only what differs."""
    inherited = next(f for f in dataclasses.fields(base) if f.name == name)
    default = changes.pop("default", inherited.default)
    return field(default=default, metadata={**inherited.metadata, "help": help, **changes})


@dataclass
class TrainConfig:
    """Settings every method shares."""

    learning_rate: float | None = _f(None, "Peak learning rate. Auto: the method's default for LoRA or full training.", minimum=0, maximum=1, auto=True)
    num_train_epochs: float = _f(1.0, "Passes over the training split.", minimum=0, maximum=1000)
    max_steps: int = _f(-1, "Stop after this many optimizer steps (overrides epochs when > 0).", minimum=-1, maximum=MAX_COUNT)
    per_device_train_batch_size: int = _f(8, "Preference pairs per batch on one device.", minimum=1, maximum=MAX_BATCH)
    gradient_accumulation_steps: int = _f(1, "Batches accumulated per optimizer step.", minimum=1, maximum=MAX_BATCH)
    per_device_eval_batch_size: int = _f(16, "Pairs per batch when evaluating on the test split.", minimum=1, maximum=MAX_BATCH)
    warmup_steps: float = _f(0.03, "Warm-up: a number of steps, or a fraction of all steps when below 1.", minimum=0, maximum=MAX_COUNT)
    weight_decay: float = _f(0.0, "AdamW weight decay.", minimum=0, maximum=1)
    lr_scheduler_type: str = _f("linear", "Learning-rate schedule.", choices=("linear", "cosine", "constant", "constant_with_warmup"))
    max_length: int = _f(1024, "Longest tokenized prompt+response kept; longer pairs are dropped (reward) or truncated (DPO).", minimum=8, maximum=MAX_TOKENS)
    seed: int = _f(42, "Random seed (data order, head initialisation).", minimum=0, maximum=MAX_SEED)
    bf16: bool | None = _f(None, "bfloat16 mixed precision. Auto: on for GPUs that support it, off on CPU.", auto=True)
    gradient_checkpointing: bool | None = _f(
        None, "Recompute activations to save memory (about 20-30% slower). Auto: off on CPU and for models under 1B parameters.", auto=True
    )
    group_by_length: bool = _f(True, "Batch pairs of similar length together so little compute is spent on padding.")
    torch_compile: bool = _f(False, "Compile the model with torch.compile (GPU; slower start, faster steps).")
    logging_steps: int = _f(5, "Steps between progress updates (heartbeat, metrics, log line).", minimum=1, maximum=MAX_COUNT)
    save_steps: int = _f(50, "Steps between checkpoints; a run resumes from the last one after a lost worker.", minimum=1, maximum=MAX_COUNT)
    save_total_limit: int = _f(2, "Checkpoints kept on disk.", minimum=1, maximum=1000)
    lora_r: int = _f(16, "LoRA rank (with LoRA).", minimum=1, maximum=1024)
    lora_alpha: int = _f(32, "LoRA scaling alpha (with LoRA).", minimum=1, maximum=65536)
    lora_dropout: float = _f(0.0, "Dropout on the LoRA path (with LoRA).", minimum=0, maximum=1)
    use_liger_kernel: bool | None = _f(
        None, "Liger's fused Triton kernels (RMSNorm, RoPE, SwiGLU, fused linear cross-entropy): less memory, faster steps. "
        "Auto: on for a GPU when the liger-kernel package is installed.", auto=True
    )
    padding_free: bool | None = _f(
        None, "Concatenate the sequences of a batch without padding (flash-attention position ids) where the method allows it. "
        "Auto: on for a GPU with flash attention.", auto=True
    )

    # Defaults for the auto learning rate, per method: (LoRA, full).
    LR_DEFAULTS: typing.ClassVar[tuple[float, float]] = (1e-4, 1e-5)
    # Whether TRL supports padding_free for this method's trainer.
    PADDING_FREE_SUPPORTED: typing.ClassVar[bool] = False
    # Settings of the shared dataclass that this method's trainer never reads: name -> why. They are
    # left out of the form and the schema, and a value other than off is refused, so that nobody
    # believes a setting took effect when it did not (issue 19: PPO "accepted" torch_compile).
    UNUSED: typing.ClassVar[dict[str, str]] = {}

    @classmethod
    def unused(cls) -> dict[str, str]:
        """UNUSED, plus padding_free where the method's trainer cannot take it."""
        out = dict(cls.UNUSED)
        if not cls.PADDING_FREE_SUPPORTED:
            out.setdefault("padding_free", "this method's trainer has no padding-free batches; leave it off")
        return out

    @classmethod
    def check(cls, values: dict) -> None:
        """Rules across fields; raise ConfigError naming the field."""


class ConfigError(ValueError):
    """A bad hyperparameter; the message names the field."""


def config_class(method: str) -> type[TrainConfig]:
    from training.recipes import catalog

    try:
        return catalog.get(method).config_class
    except KeyError as exc:
        raise ConfigError(f"method: {exc.args[0]}") from None


def _fields(cls: type[TrainConfig]) -> list[tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls)]


def _base_type(tp) -> tuple[type, bool]:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    optional = type(None) in typing.get_args(tp)
    return (args[0] if args else tp), optional


def _coerce(name: str, value: Any, tp) -> Any:
    base, optional = _base_type(tp)
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto", "none")):
        if optional:
            return None
        raise ConfigError(f"{name}: a value is required")
    try:
        if base is bool:
            if isinstance(value, bool):
                return value
            low = str(value).strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if base is int:
            # true is not the number 1, nor 2.5 the number 2.
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(str(value).strip()) if isinstance(value, str) else int(value)
        if base is float:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
            # float() takes "nan" and "inf" (and 1e999 becomes inf): the JSON column refuses to store them.
            if not math.isfinite(number):
                raise ConfigError(f"{name}: {value!r} is not a finite number")
            return number
        if base is str:
            if not isinstance(value, str):
                raise ValueError
            return value.strip()
    except (TypeError, ValueError, OverflowError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{name}: {_shown(value)} is not a valid {base.__name__}") from None
    return value


def _shown(value: Any) -> str:
    """The value in a message, short and encodable (a lone surrogate would break the response)."""
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def config_validate(method: str, data: dict | None) -> dict:
    """Check a user's settings against the method's dataclass; return every field, defaults filled.
    Raises ConfigError naming the first bad field."""
    cls = config_class(method)
    data = dict(data or {})
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known, key=str)
    if unknown:
        raise ConfigError(f"{_shown(unknown[0])[1:-1]}: unknown setting for {method} (known: {', '.join(sorted(known))})")
    out = {}
    unused = cls.unused()
    for f, tp in _fields(cls):
        if f.metadata.get("weights"):
            out[f.name] = _weights(f, data.get(f.name, f.default))
            continue
        value = _coerce(f.name, data[f.name], tp) if f.name in data else f.default
        if f.name in unused:
            # Off is the only truthful value: the trainer runs without it whatever the row says
            # (the shared default, e.g. group_by_length on, does not apply to this method).
            if f.name in data and value:
                raise ConfigError(f"{f.name}: {method} does not use it ({unused[f.name]})")
            out[f.name] = False
            continue
        choices, minimum, maximum = f.metadata.get("choices"), f.metadata.get("minimum"), f.metadata.get("maximum")
        if value is not None and choices and value not in choices:
            raise ConfigError(f"{f.name}: {_shown(value)} is not one of {', '.join(map(str, choices))}")
        if value is not None and minimum is not None and not isinstance(value, bool) and value < minimum:
            raise ConfigError(f"{f.name}: {value} must be at least {minimum}")
        if value is not None and maximum is not None and not isinstance(value, bool) and value > maximum:
            raise ConfigError(f"{f.name}: {_shown(value)} must be at most {maximum}")
        out[f.name] = value
    cls.check(out)
    return out


def _weights(f: dataclasses.Field, raw: Any) -> str | None:
    """A weights setting checked entry by entry against the field's bounds; stored as canonical text."""
    from training.core.heads import WeightsError, weights_parse, weights_text

    try:
        parsed = weights_parse(raw, field=f.name, minimum=f.metadata["minimum"], maximum=f.metadata["maximum"])
    except WeightsError as exc:
        raise ConfigError(str(exc)) from None
    return weights_text(parsed)


def config_schema(method: str) -> list[dict]:
    """Fields for a form: name, type, default, help, choices, bounds (inclusive), whether None means auto,
    and `unused`: why the method ignores the field (None when it reads it)."""
    rows = []
    cls = config_class(method)
    unused = cls.unused()
    for f, tp in _fields(cls):
        base, optional = _base_type(tp)
        rows.append(
            {
                "name": f.name,
                "type": base.__name__,
                "default": f.default,
                "optional": optional,
                "auto": bool(f.metadata.get("auto")),
                "help": f.metadata.get("help", ""),
                "choices": list(f.metadata["choices"]) if f.metadata.get("choices") else None,
                "minimum": f.metadata.get("minimum"),
                "maximum": f.metadata.get("maximum"),
                # name=number pairs (training/core/heads.py): text in a form, an object or text in the API.
                "weights": bool(f.metadata.get("weights")),
                # The method never reads it (TrainConfig.UNUSED): stored as off, any other value refused;
                # the start form leaves it out.
                "unused": unused.get(f.name),
            }
        )
        if f.name in unused:
            rows[-1].update(default=False, help=f"Not used by {method}: {unused[f.name]}. Only off is accepted.")
    return rows


def liger_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("liger_kernel") is not None


def flash_attention_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("flash_attn") is not None


def config_resolve(method: str, values: dict, *, use_lora: bool, device_type: str, bf16_supported: bool, n_params: int) -> TrainConfig:
    """Fill the auto fields for the device the worker actually has."""
    cls = config_class(method)
    cfg = cls(**config_validate(method, values))
    if cfg.learning_rate is None:
        cfg.learning_rate = cfg.LR_DEFAULTS[0] if use_lora else cfg.LR_DEFAULTS[1]
    if cfg.bf16 is None:
        cfg.bf16 = device_type == "cuda" and bf16_supported
    if device_type == "cpu":
        cfg.bf16 = False  # CPU autocast to bf16 is slower than fp32 on most CPUs and loses precision
    if cfg.gradient_checkpointing is None:
        cfg.gradient_checkpointing = device_type == "cuda" and n_params >= 1_000_000_000
    if device_type != "cuda":
        cfg.torch_compile = False
    if cfg.use_liger_kernel is None:
        cfg.use_liger_kernel = device_type == "cuda" and liger_available()
    if cfg.use_liger_kernel and not liger_available():
        raise ConfigError("use_liger_kernel: the liger-kernel package is not installed on this worker")
    if cfg.padding_free is None:
        # Padding-free batches need an attention that reads position ids across sequence
        # boundaries: flash attention on a GPU. Elsewhere they would be attended as one sequence.
        cfg.padding_free = cls.PADDING_FREE_SUPPORTED and device_type == "cuda" and flash_attention_available()
    if not cls.PADDING_FREE_SUPPORTED:
        cfg.padding_free = False
    return cfg
