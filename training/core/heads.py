"""The heads of a multi-objective reward model and the weights that combine them.

A reward model trained by the `multi_reward` recipe has one regression head per attribute
(helpfulness, correctness, ...), each predicting the attribute on a 0..1 scale. Its folder holds
`arbiter_heads.json`:

    {"attributes": ["helpfulness", "verbosity"], "weights": {"helpfulness": 1.0, "verbosity": -0.5},
     "scales": {"helpfulness": [0, 4], ...}}

A file of its own rather than only a key of config.json, because a LoRA reward model is saved as
an adapter, whose folder has no config.json of its own. The combined reward is
sum(w_k * head_k); a caller may give other weights (a dict that replaces the defaults whole:
attributes it does not name weigh 0). A model without the file is a single-head reward model.

No torch and no Django: the web process validates weights with it, the workers load models with it.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

HEADS_FILE = "arbiter_heads.json"
# The bounds of one weight (the score endpoint, runs' attribute_weights, evaluations): the heads
# predict 0..1, so a weight past this is a typo rather than a preference.
MAX_WEIGHT = 100.0
MAX_ATTRIBUTES = 64
# The contract's question keys (annotation/questions.py): slug, at most 40 characters.
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class WeightsError(ValueError):
    """Bad weights; `field` names the offending entry ("weights.helpfulness")."""

    def __init__(self, message: str, *, field: str):
        super().__init__(f"{field}: {message}")
        self.field = field


def heads_read(folder: Path | str) -> dict | None:
    """The heads of a model folder ({"attributes", "weights", "scales"}), None for a single-head model."""
    path = Path(folder) / HEADS_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        attributes = [str(a) for a in data["attributes"]]
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(f"{path}: not a valid heads file (expected {{\"attributes\": [...], \"weights\": {{...}}}})") from None
    weights = {str(k): float(v) for k, v in (data.get("weights") or {}).items() if k in attributes}
    return {"attributes": attributes, "weights": weights, "scales": data.get("scales") or {}}


def heads_write(folder: Path | str, *, attributes: list[str], weights: dict[str, float], scales: dict) -> None:
    Path(folder, HEADS_FILE).write_text(json.dumps({"attributes": list(attributes), "weights": dict(weights), "scales": scales}, indent=2))


def num_labels(folder: Path | str) -> int:
    """Outputs of the model's head: one per attribute, or 1 for a single-head reward model."""
    heads = heads_read(folder)
    return len(heads["attributes"]) if heads else 1


def weights_parse(raw, *, field: str = "weights", minimum: float = -MAX_WEIGHT, maximum: float = MAX_WEIGHT) -> dict[str, float] | None:
    """{name: weight} from a dict (API JSON) or a text "helpfulness=1, verbosity=-0.5" (a form);
    None or empty: no weights given. Names are checked for shape here, against a model in `weights_check`."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, str):
        pairs = {}
        for part in filter(None, (p.strip() for p in raw.split(","))):
            name, eq, value = part.partition("=")
            if not eq:
                raise WeightsError(f"{part!r} is not name=weight (e.g. helpfulness=1, verbosity=-0.5)", field=field)
            pairs[name.strip()] = value.strip()
        raw = pairs
    if not isinstance(raw, dict):
        raise WeightsError("an object of attribute name to weight, e.g. {\"helpfulness\": 1}", field=field)
    if len(raw) > MAX_ATTRIBUTES:
        raise WeightsError(f"at most {MAX_ATTRIBUTES} weights, got {len(raw)}", field=field)
    out = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise WeightsError(f"{str(name)[:50]!r} is not an attribute name (a-z, 0-9, _; at most 40 characters)", field=field)
        where = f"{field}.{name}"
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            raise WeightsError(f"{str(value)[:50]!r} is not a number", field=where) from None
        if not math.isfinite(number):
            raise WeightsError(f"{value!r} is not a finite number", field=where)
        if not minimum <= number <= maximum:
            raise WeightsError(f"{number:g} is outside {minimum:g}..{maximum:g}", field=where)
        out[name] = number
    return out or None


def weights_text(weights: dict[str, float] | None) -> str | None:
    """The canonical text of weights, as a run's config stores them ("a=1, b=-0.5")."""
    return ", ".join(f"{k}={v:g}" for k, v in weights.items()) if weights else None


def weights_check(heads: dict | None, weights: dict[str, float] | None, *, field: str = "weights", model: str = "the reward model") -> None:
    """Refuse weights a model cannot apply: any weight for a single-head model, a name it has no head for."""
    if not weights:
        return
    if heads is None:
        raise WeightsError(f"{model} has a single head: it has no attributes to weight", field=field)
    for name in weights:
        if name not in heads["attributes"]:
            raise WeightsError(f"{model} has no attribute {name!r} (it has {', '.join(heads['attributes'])})", field=f"{field}.{name}")


def weights_vector(heads: dict, weights: dict[str, float] | None) -> list[float]:
    """One weight per head, in head order: the given weights (unnamed attributes 0), else the defaults."""
    chosen = weights if weights else heads["weights"]
    return [float(chosen.get(a, 0.0)) for a in heads["attributes"]]


def heads_attach(net, folder: Path | str) -> None:
    """Record a loaded network's heads on its config, where the scorer reads them (an adapter's
    base model too: peft hands the base config to whoever asks the wrapper)."""
    heads = heads_read(folder)
    for model in (net, net.get_base_model() if hasattr(net, "get_base_model") else None):
        config = getattr(model, "config", None)
        if config is not None:
            config.arbiter_heads = heads
