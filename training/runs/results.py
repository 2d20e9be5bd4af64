"""How a run's figures are shown: every accuracy with its n and a 95% Wilson interval
(training/core/stats.py), captions that agree with the numbers. Read by the run page, the model page and
the API; no torch. Also the record of an online run's kept checkpoints (checkpoint_records), written
into its result when it finishes.
"""
from __future__ import annotations

from pathlib import Path

from training.core.stats import wilson

# Where a recipe's evaluation says how many rows an accuracy was measured on.
_N_KEYS = ("accuracy_n", "test_pairs", "test_rows")


def accuracy_figures(values: dict) -> dict[str, dict]:
    """{name: {value, k, n, ci95, method}} for every accuracy in an evaluation dict that has an n."""
    n = next((values[k] for k in _N_KEYS if isinstance(values.get(k), int) and not isinstance(values.get(k), bool)), None)
    out = {}
    for key, value in values.items():
        if not key.endswith("accuracy") or not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        own_n = values.get(f"{key}_n", n)
        if not isinstance(own_n, int) or own_n <= 0:
            out[key] = {"value": value, "k": None, "n": own_n, "ci95": None, "method": "wilson"}
            continue
        k = round(value * own_n)  # evaluations report the share; the count is share·n (exact for per-row shares)
        lo, hi = wilson(k, own_n)
        out[key] = {"value": value, "k": k, "n": own_n, "ci95": [round(lo, 4), round(hi, 4)], "method": "wilson"}
    return out


def accuracy_text(fig: dict) -> str:
    """'0.850 (34 of 40; 95% CI 0.71–0.93)', or the value with 'n unknown'."""
    if not fig.get("ci95"):
        return f"{fig['value']:.3f} (n unknown: no interval)"
    lo, hi = fig["ci95"]
    return f"{fig['value']:.3f} ({fig['k']} of {fig['n']}; 95% CI {lo:.2f}–{hi:.2f})"


# A policy evaluation's win rate (training/rl/comparison.py) and the keys its text already shows.
_WIN_KEYS = ("n", "wins", "ties", "losses", "ci_low", "ci_high")


def win_rate_text(values: dict) -> str | None:
    """'0.600 (n=10: 5 wins, 2 ties, 3 losses; 95% CI 0.31–0.83)' for an evaluation's figures."""
    if not isinstance(values.get("win_rate"), (int, float)) or not all(isinstance(values.get(k), (int, float)) for k in _WIN_KEYS):
        return None
    v = values
    return (f"{v['win_rate']:.3f} (n={v['n']}: {v['wins']} wins, {v['ties']} ties, {v['losses']} losses; "
            f"95% CI {v['ci_low']:.2f}–{v['ci_high']:.2f})")


def attribute_text(fig: dict) -> str:
    """'Spearman 0.812 (95% CI 0.66–0.90), MAE 0.312 (95% CI 0.25–0.37); n=40' for one head of a
    multi-objective reward model (training/recipes/multi_reward.py)."""
    def part(name: str, value, ci) -> str:
        if not isinstance(value, (int, float)):
            return f"{name} n/a"
        return f"{name} {value:.3f}" + (f" (95% CI {ci[0]:.2f}–{ci[1]:.2f})" if ci else " (no interval)")

    return f"{part('Spearman', fig.get('spearman'), fig.get('spearman_ci95'))}, {part('MAE', fig.get('mae'), fig.get('mae_ci95'))}; n={fig.get('n')}"


def display_rows(values: dict) -> list[tuple[str, str]]:
    """Plain values as display text: accuracies with n and interval, a win rate with its counts and
    interval, other floats to 4 significant digits, the rest as they are; the keys that an accuracy
    or the win rate already shows are left out."""
    figures = accuracy_figures(values)
    win = win_rate_text(values)
    heads = values.get("attributes") if isinstance(values.get("attributes"), dict) else {}
    shown = {f"{a}_{k}" for a in heads for k in ("mae", "spearman")}  # the flat copies, shown with their intervals
    rows = []
    for key, value in values.items():
        if key == "attributes" and heads:
            rows += [(name, attribute_text(fig)) for name, fig in heads.items() if isinstance(fig, dict)]
        elif key in shown:
            continue
        elif key in figures:
            rows.append((key, accuracy_text(figures[key])))
        elif key.endswith("_n") and key[:-2] in figures:
            continue
        elif key == "win_rate" and win:
            rows.append((key, win))
        elif key in _WIN_KEYS and win:
            continue
        elif isinstance(value, bool):
            rows.append((key, str(value)))
        elif isinstance(value, float):
            rows.append((key, f"{value:.4g}"))
        elif isinstance(value, (int, str)):
            rows.append((key, str(value)))
    return rows


# --- an online run's kept checkpoints ------------------------------------------------------------

# Files in a checkpoint folder that make it loadable as a model (TRL's checkpoint-N, or PPO's
# checkpoint-N/policy): a full model's config, or an adapter's.
MODEL_MARKERS = ("config.json", "adapter_config.json")


def checkpoint_model_folder(folder: Path) -> Path | None:
    """Where a checkpoint's loadable policy lies: PPO writes it to policy/ beside its state,
    TRL's checkpoints are model folders themselves; None when neither holds a model."""
    for candidate in (folder / "policy", folder):
        if any((candidate / marker).is_file() for marker in MODEL_MARKERS):
            return candidate
    return None


def checkpoint_records(folder: Path, points: list[dict]) -> list[dict]:
    """[{step, path, score, kl}] for each complete checkpoint under `folder`, oldest first: the path
    of its model relative to the artifact root, and the reward-model score mean and KL logged at its
    step (the last metric point at or before it: a point may be logged every few steps)."""
    from training.core.paths import artifact_relative

    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = sorted((int(p.name.split("-")[-1]), p) for p in folder.iterdir()
                   if p.is_dir() and p.name.startswith("checkpoint-") and p.name.split("-")[-1].isdigit())
    logged = sorted((p for p in points or [] if isinstance(p.get("step"), int) and isinstance(p.get("score"), (int, float))),
                    key=lambda p: p["step"])
    records = []
    for step, path in found:
        model = checkpoint_model_folder(path)
        if model is None:  # a save killed half-way, or a checkpoint of an older version without its policy
            continue
        point = next((p for p in reversed(logged) if p["step"] <= step), None) or {}
        records.append({"step": step, "path": artifact_relative(model),
                        "score": _number(point.get("score")), "kl": _number(point.get("kl"))})
    return records


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
