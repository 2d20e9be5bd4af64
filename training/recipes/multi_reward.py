"""Multi-objective reward model (in the manner of SteerLM and ArmoRM): one regression head per
attribute the raters scored (helpfulness, correctness, verbosity, ...) on a shared backbone,
trained with MSE on the snapshot's `attributes` rows; a combined reward sum(w_k * head_k) under
weights saved with the model (arbiter_heads.json, training/core/heads.py) or given per call.

Each head predicts its attribute on 0..1: the targets are normalised by the scale the snapshot's
manifest declares for the question (min, max), else by the range seen in the train split, so that
weights compare attributes of different scales. An attribute a row lacks (null) is left out of the
loss (masked), not read as 0. Optionally a Bradley-Terry loss on the combined score over pairs of
responses to the same item whose combined targets differ (pair_loss_weight > 0).

A training example is one item (all its scored responses), so that its pairs share a batch; the
rows are tokenized by the scorer's own rule (training/core/scorer.py: pair_ids), so the heads see
a pair exactly as the score endpoint, selection, evaluation and online RL will show it to them.
"""
from __future__ import annotations

import json
import typing
from dataclasses import dataclass
from pathlib import Path

from training.core.heads import MAX_WEIGHT, WeightsError, heads_write, weights_parse
from training.recipes.base import ConfigError, TrainConfig, _f, _reworded
from training.recipes.catalog import Recipe, register
from training.recipes.common import LENGTH_COLUMN, Hooks, lora_config, split_path, train_with_trainer, training_args_kwargs, with_length_column

# The columns of an `attributes` row that are not attributes (the export contract).
FIXED = ("prompt", "response", "item_id", "position", "model")
HEAD_NAMES = ("score", "classifier")  # decoder LMs: score; encoders: classifier


@dataclass
class MultiRewardConfig(TrainConfig):
    """Multi-objective reward model: one regression head per attribute."""

    per_device_train_batch_size: int = _reworded(TrainConfig, "per_device_train_batch_size",
                                                 "Items per batch on one device (each with all its scored responses).")
    per_device_eval_batch_size: int = _reworded(TrainConfig, "per_device_eval_batch_size", "Responses per batch when evaluating on the test split.")
    max_length: int = _reworded(TrainConfig, "max_length", "Longest tokenized prompt+response; a longer one loses the start of its prompt (as the scorer cuts).")
    default_weights: str | None = _f(
        None, "The weights saved with the model, attribute=weight pairs (\"helpfulness=1, verbosity=-0.5\"; attributes left out "
        "weigh 0). Empty: the mean of the heads (1/K each). Callers may give their own per request or run.",
        minimum=-MAX_WEIGHT, maximum=MAX_WEIGHT, weights=True)
    pair_loss_weight: float = _f(0.0, "Weight of a Bradley-Terry loss on the combined score over pairs of responses to the same item "
                                 "whose combined targets differ (0: off, heads trained by MSE alone).", minimum=0, maximum=100)

    LR_DEFAULTS: typing.ClassVar[tuple[float, float]] = (1e-4, 1e-5)
    UNUSED: typing.ClassVar[dict[str, str]] = {
        # Liger's fused cross-entropy would replace a sequence classifier's forward (see reward.py).
        "use_liger_kernel": "a regression head has no language-model loss for Liger's kernels to fuse",
    }


RECIPE = register(Recipe(
    method="multi_reward",
    label="Multi-objective reward model (attributes)",
    description="One head per rated attribute (helpfulness, correctness, ...) on a shared backbone; the reward is their weighted sum.",
    config_class=MultiRewardConfig,
    reads="attributes",
    base_kinds=("causal_lm", "encoder", "reward_model"),
    produces="reward_model",
    module=__name__,
    evaluates="per attribute on the test split: mean absolute error (t interval) and Spearman's rho (Fisher z interval), each with n; "
              "accuracy of the combined score on pairs of responses to the same item.",
    row_noun="scored responses",
))


# --- the snapshot's attributes -------------------------------------------------------------------

def attributes_scan(folder: Path) -> tuple[list[str], dict[str, list[float]]]:
    """The attributes of the train split (a column with its `_count` beside it) and the scale of each:
    declared in the manifest's questions when it has them, else the range the train split shows."""
    path = split_path(folder, "attributes", "train")
    names: list[str] = []
    seen: dict[str, list[float]] = {}
    with open(path, encoding="utf-8") as fh:
        for line in filter(str.strip, fh):
            row = json.loads(line)
            for key in row:
                if key not in FIXED and not key.endswith("_count") and f"{key}_count" in row and key not in names:
                    names.append(key)
            for key in names:
                if isinstance(row.get(key), (int, float)) and not isinstance(row.get(key), bool):
                    seen.setdefault(key, []).append(float(row[key]))
    declared = {}
    manifest = Path(folder) / "manifest.json"
    if manifest.is_file():
        for q in json.loads(manifest.read_text()).get("questions") or []:
            if isinstance(q, dict) and q.get("type") == "scale" and isinstance(q.get("min"), (int, float)) and isinstance(q.get("max"), (int, float)):
                declared[q.get("key")] = [float(q["min"]), float(q["max"])]
    scales = {}
    for name in names:
        values = seen.get(name) or [0.0]
        lo, hi = declared.get(name) or [min(values), max(values)]
        scales[name] = [lo, hi if hi > lo else lo + 1.0]  # one value seen: any scale of width 1 keeps it finite
    return names, scales


def normalised(row: dict, attributes: list[str], scales: dict) -> tuple[list[float], list[float]]:
    """(targets on 0..1, present 1/0) of one row; a null attribute is absent, not 0."""
    targets, present = [], []
    for a in attributes:
        value = row.get(a)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        lo, hi = scales[a]
        targets.append((float(value) - lo) / (hi - lo) if ok else 0.0)
        present.append(1.0 if ok else 0.0)
    return targets, present


def item_pairs(targets: list[list[float]], present: list[list[float]], weights: list[float]) -> list[list[int]]:
    """[winner, loser] for responses of one item whose combined targets differ, over the attributes both have."""
    pairs = []
    for i in range(len(targets)):
        for j in range(i + 1, len(targets)):
            diff = sum(w * (targets[i][k] - targets[j][k]) for k, w in enumerate(weights) if present[i][k] and present[j][k])
            if abs(diff) > 1e-9:
                pairs.append([i, j] if diff > 0 else [j, i])
    return pairs


def items_dataset(rows, *, attributes: list[str], scales: dict, weights: list[float]):
    """Rows grouped into items (item_id; the prompt when a row has none), rows without any attribute left out."""
    from datasets import Dataset

    groups: dict[str, dict] = {}
    for row in rows:
        targets, present = normalised(row, attributes, scales)
        if not any(present):
            continue
        key = str(row["item_id"]) if row.get("item_id") is not None else json.dumps(row["prompt"], sort_keys=True)
        group = groups.setdefault(key, {"prompt": row["prompt"], "responses": [], "targets": [], "present": []})
        group["responses"].append(row["response"])
        group["targets"].append(targets)
        group["present"].append(present)
    items = [{**g, "pairs": item_pairs(g["targets"], g["present"], weights)} for g in groups.values()]
    return Dataset.from_list(items)


# --- model, trainer, evaluation --------------------------------------------------------------------

def model_load(*, path: Path | str, dtype=None, n_heads: int):
    from transformers import AutoModelForSequenceClassification

    # ignore_mismatched_sizes: a single-head reward model may be the base; its backbone is kept and
    # the head drawn again with one output per attribute.
    return AutoModelForSequenceClassification.from_pretrained(
        str(path), num_labels=n_heads, problem_type="regression", use_safetensors=True, dtype=dtype, attn_implementation="sdpa",
        ignore_mismatched_sizes=True,
    )


def collate(features: list[dict], *, pad_id: int) -> dict:
    """Items flattened into rows, right-padded (the head reads the last non-pad token); the pairs'
    indices moved to the flattened rows."""
    import torch

    ids, targets, present, winners, losers = [], [], [], [], []
    for item in features:
        offset = len(ids)
        ids += item["ids"]
        targets += item["targets"]
        present += item["present"]
        for w, lo in item["pairs"]:
            winners.append(offset + w)
            losers.append(offset + lo)
    width = max(len(s) for s in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, s in enumerate(ids):
        input_ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "targets": torch.tensor(targets), "present": torch.tensor(present),
            "winners": torch.tensor(winners, dtype=torch.long), "losers": torch.tensor(losers, dtype=torch.long)}


def trainer_class(*, weights: list[float], pair_loss_weight: float):
    from transformers import Trainer

    class MultiHeadTrainer(Trainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            # Our loss is a mean per batch: Trainer must scale it for gradient accumulation itself
            # (it leaves that to models whose forward takes loss kwargs, which a Llama's does).
            self.model_accepts_loss_kwargs = False

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            import torch.nn.functional as F

            out = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
            pred = out.logits.float()
            present = inputs["present"]
            # Masked MSE: a null attribute (nobody rated it) teaches its head nothing.
            loss = ((pred - inputs["targets"]) ** 2 * present).sum() / present.sum().clamp(min=1)
            if pair_loss_weight > 0 and inputs["winners"].numel():
                combined = pred @ pred.new_tensor(weights)
                loss = loss + pair_loss_weight * -F.logsigmoid(combined[inputs["winners"]] - combined[inputs["losers"]]).mean()
            return (loss, out) if return_outputs else loss

    return with_length_column(MultiHeadTrainer)


def trainer_build(*, cfg: MultiRewardConfig, model, tokenizer, train_ds, use_lora: bool, output_dir, device_type: str, heads: dict,
                  callbacks=(), test_ds=None):
    from transformers import TrainingArguments

    from training.core.scorer import pair_ids, scoring_length

    model.config.pad_token_id = tokenizer.pad_token_id  # the head reads the last non-pad token
    model.config.arbiter_heads = heads  # config.json of a full model carries them; the scorer reads them here during evaluation
    limit = scoring_length(model, tokenizer, cfg.max_length)

    def tokenize(item):
        ids = pair_ids(tokenizer, [item["prompt"]] * len(item["responses"]), item["responses"], max_length=limit)
        return {"ids": ids, LENGTH_COLUMN: sum(len(s) for s in ids)}

    train_ds = train_ds.map(tokenize, desc="Tokenizing items")
    if use_lora:
        from peft import get_peft_model

        names = [n for n, _ in model.named_children() if n in HEAD_NAMES]
        # The heads start random: with LoRA they are trained in full beside the adapter.
        model = get_peft_model(model, lora_config(cfg, task_type="SEQ_CLS", model=model, modules_to_save=names))
    kwargs = training_args_kwargs(cfg, output_dir=output_dir, device_type=device_type)
    kwargs.pop("max_length")  # TRL's argument; the rows are cut above, by the scorer's rule
    args = TrainingArguments(**kwargs, remove_unused_columns=False)
    weights = [heads["weights"][a] for a in heads["attributes"]]
    cls = trainer_class(weights=weights, pair_loss_weight=cfg.pair_loss_weight)
    return cls(model=model, args=args, train_dataset=train_ds, processing_class=tokenizer, callbacks=list(callbacks),
               data_collator=lambda features: collate(features, pad_id=tokenizer.pad_token_id))


def figures(pred: list[float], truth: list[float]) -> dict:
    """MAE with its t interval and Spearman's rho with its Fisher z interval, each with n."""
    from training.core.stats import mean_interval, spearman, spearman_interval

    errors = [abs(p - t) for p, t in zip(pred, truth)]
    n = len(errors)
    rho = spearman(pred, truth) if n >= 2 else None
    mae_ci, rho_ci = mean_interval(errors), spearman_interval(rho, n)
    return {"n": n, "mae": sum(errors) / n if n else None, "mae_ci95": [round(v, 4) for v in mae_ci] if mae_ci else None,
            "spearman": rho, "spearman_ci95": [round(v, 4) for v in rho_ci] if rho_ci else None}


def evaluate(*, trainer, cfg: MultiRewardConfig, test_ds, heads: dict) -> dict:
    """Per attribute, on its own scale: MAE and Spearman's rho over the test rows that have it; the
    combined score's accuracy on the test pairs (responses to one item whose combined targets differ)."""
    from training.core.scorer import head_scores

    if test_ds is None or len(test_ds) == 0:
        return {"test_rows": 0, "note": "the snapshot has no test split"}
    attributes, scales = heads["attributes"], heads["scales"]
    model = trainer.model.eval()
    tokenizer = trainer.processing_class
    preds = head_scores(model, tokenizer, list(test_ds["prompt"]), list(test_ds["response"]),
                        batch_size=cfg.per_device_eval_batch_size, cap=cfg.max_length).cpu().tolist()
    per = {}
    for k, a in enumerate(attributes):
        lo, hi = scales[a]
        rows = [(lo + p[k] * (hi - lo), float(r[a])) for p, r in zip(preds, test_ds) if isinstance(r.get(a), (int, float))]
        # Predictions mapped back to the attribute's own scale, so an MAE reads in the raters' points.
        per[a] = figures([p for p, _ in rows], [t for _, t in rows])
    out = {"test_rows": len(test_ds), "attributes": per}
    for a, f in per.items():  # flat copies: the model's metrics keep scalars only
        out[f"{a}_mae"], out[f"{a}_spearman"] = f["mae"], f["spearman"]
    weights = [heads["weights"][a] for a in attributes]
    right = total = 0
    rows_all = test_ds.to_list()
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows_all):
        groups.setdefault(str(row.get("item_id") if row.get("item_id") is not None else json.dumps(row["prompt"])), []).append(i)
    for rows in groups.values():
        targets, present = zip(*(normalised(rows_all[i], attributes, scales) for i in rows))
        combined = [sum(wk * pk for wk, pk in zip(weights, preds[i])) for i in rows]
        for w, lo in item_pairs(list(targets), list(present), weights):
            right += combined[w] > combined[lo]
            total += 1
    out.update({"accuracy": right / total if total else None, "accuracy_n": total})
    return out


def train(ctx) -> dict:
    """Read the attributes and their scales, train the heads (the shared skeleton), save arbiter_heads.json."""
    folder = Path(ctx.snapshot_dir)
    train_file = split_path(folder, "attributes", "train")
    if not train_file.is_file() or train_file.stat().st_size == 0:
        raise ValueError(f"{train_file}: the snapshot has no attributes rows to train on (export it with the attributes format)")
    attributes, scales = attributes_scan(folder)
    if not attributes:
        raise ValueError(f"{train_file}: no attribute columns (a number column with its _count beside it)")
    try:
        given = weights_parse(ctx.config.get("default_weights"), field="default_weights")
    except WeightsError as exc:
        raise ConfigError(str(exc)) from None
    unknown = sorted(set(given or {}) - set(attributes))
    if unknown:
        raise ConfigError(f"default_weights.{unknown[0]}: the snapshot has no attribute {unknown[0]!r} (it has {', '.join(attributes)})")
    defaults = given or {a: 1.0 / len(attributes) for a in attributes}
    heads = {"attributes": attributes, "weights": {a: float(defaults.get(a, 0.0)) for a in attributes}, "scales": scales}
    ctx.progress.say("attributes: " + ", ".join(f"{a} {lo:g}..{hi:g} (weight {heads['weights'][a]:g})" for a, (lo, hi) in scales.items()))
    weights = [heads["weights"][a] for a in attributes]

    def prepare(*, train_ds, test_ds, cfg, ctx):
        items = items_dataset(train_ds, attributes=attributes, scales=scales, weights=weights)
        if len(items) == 0:
            raise ValueError(f"{train_file}: no row has any attribute value")
        return items, test_ds, {"train_items": len(items), "train_pairs": sum(len(p) for p in items["pairs"])}

    hooks = Hooks(
        model_load=lambda *, path, dtype=None: model_load(path=path, dtype=dtype, n_heads=len(attributes)),
        trainer_build=lambda **kw: trainer_build(heads=heads, **kw),
        evaluate=lambda **kw: evaluate(heads=heads, **kw),
        prepare=prepare,
        columns=("prompt", "response"),
    )
    result = train_with_trainer(ctx, RECIPE, hooks)
    out = Path(ctx.out_dir)
    if getattr(ctx.progress, "is_main", True) and out.is_dir():
        heads_write(out, **heads)  # beside the weights: an adapter's folder has no config.json to carry them
    result["heads"] = heads
    return result
