"""Pieces every recipe shares: the run skeleton (`train_with_trainer`: load the snapshot split,
model and tokenizer, resolve the config, build the trainer, resume, train, save, evaluate,
samples), the trainer set-up (training arguments from a recipe config, LoRA settings, the length
column that length-grouped batching reads), the progress callback, saving, tokenizer loading,
greedy samples; and what the offline policy recipes (DPO, SFT, KTO) share: their sample settings
(PolicyConfig), the causal LM they load and their samples.

The recipe modules import it, and the web process imports them for their declarations: so this
module imports no torch (nor transformers, peft, datasets) at module level, only inside functions.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any, Callable

from training.core.chat import PLAIN_CHAT_TEMPLATE, chat_rows, is_conversational, render_prompt, special_tokens
from training.recipes.base import TrainConfig, _f, config_resolve

log = logging.getLogger(__name__)
LENGTH_COLUMN = "length"
LOSS_LEDGER = "arbiter_loss.json"  # in each checkpoint: the loss summed over every step so far (all attempts)


@dataclasses.dataclass
class PolicyConfig(TrainConfig):
    """Settings the offline policy methods share (DPO, SFT, KTO): the samples shown at the end."""

    sample_prompts: int = _f(8, "Held-out prompts answered by the trained policy and by its reference (the base model) at the end.", minimum=0, maximum=1000)
    sample_max_new_tokens: int = _f(64, "Tokens generated per sample.", minimum=1, maximum=4096)


def causal_lm_load(*, path: Path | str, dtype=None):
    """The model of a policy recipe: a causal LM (the `model_load` of DPO, SFT and KTO)."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(path), use_safetensors=True, dtype=dtype, attn_implementation="sdpa")


def training_args_kwargs(cfg: TrainConfig, *, output_dir: Path | str, device_type: str) -> dict[str, Any]:
    """Keyword arguments shared by TRL's RewardConfig and DPOConfig."""
    return dict(
        output_dir=str(output_dir),
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.num_train_epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        per_device_eval_batch_size=cfg.per_device_eval_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay,
        lr_scheduler_type=cfg.lr_scheduler_type,
        max_length=cfg.max_length,
        seed=cfg.seed,
        bf16=bool(cfg.bf16),
        fp16=False,
        gradient_checkpointing=bool(cfg.gradient_checkpointing),
        # Every trainable weight takes part in each forward pass (LoRA adapters, heads), so DDP need
        # not walk the autograd graph for unused ones: transformers turns that walk on by default
        # without gradient checkpointing, at a cost on every step.
        ddp_find_unused_parameters=False,
        torch_compile=bool(cfg.torch_compile),
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        eval_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=device_type == "cpu",
        dataloader_num_workers=0,
        # Length-grouped batches: pairs of similar length share a batch, so padding is small.
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "random",
        length_column_name=LENGTH_COLUMN,
        # Fused AdamW: one kernel per parameter group on GPU instead of a loop of small ones.
        optim="adamw_torch_fused" if device_type == "cuda" else "adamw_torch",
        use_liger_kernel=bool(cfg.use_liger_kernel),
    )


def lora_config(cfg: TrainConfig, *, task_type: str, model, modules_to_save: list[str] | None = None):
    """LoRA on every linear layer of the backbone, never on the output head (that one is trained
    in full through modules_to_save for a reward model)."""
    from peft import LoraConfig

    head = set(modules_to_save or [])
    import torch

    targets = sorted(
        {
            name.rsplit(".", 1)[-1]
            for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and name.split(".")[0] not in head and name.rsplit(".", 1)[-1] not in head | {"lm_head"}
        }
    )
    return LoraConfig(
        task_type=task_type,
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=targets,
        modules_to_save=modules_to_save,
    )


def trainer_make(
    *,
    trainer_cls,
    args_cls,
    cfg: TrainConfig,
    model,
    tokenizer,
    train_ds,
    use_lora: bool,
    output_dir: Path | str,
    device_type: str,
    callbacks=(),
    method_args: dict[str, Any],
    lora_task_type: str,
    lora_modules_to_save: list[str] | None = None,
    length_columns: tuple[str, ...],
    **trainer_kwargs,
):
    """The trainer set-up every recipe shares, so that a recipe's trainer_build passes only what
    is its own: TRL's config class and the method's arguments, the LoRA task, the columns whose
    length groups batches, and any extra trainer argument (DPO: ref_model).

    The shared part: TRL's config from training_args_kwargs (device flags included), LoRA through
    peft (None: full training), the run's callbacks, and the length column kept through Trainer's
    column pruning. That column is filled only after the trainer is built, because the lengths are
    those of the token ids the trainer has just produced from the split."""
    args = args_cls(**{**training_args_kwargs(cfg, output_dir=output_dir, device_type=device_type), **method_args})
    peft_config = None
    if use_lora:
        peft_config = lora_config(cfg, task_type=lora_task_type, model=model, modules_to_save=lora_modules_to_save)
    trainer = with_length_column(trainer_cls)(
        model=model,
        args=args,
        train_dataset=train_ds,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=list(callbacks),
        **trainer_kwargs,
    )
    if cfg.group_by_length:
        trainer.train_dataset = add_length_column(trainer.train_dataset, length_columns)
    return trainer


# The run page lists these first, in this order; a recipe's own effective values follow.
EFFECTIVE_ORDER = ("bf16", "gradient_checkpointing", "use_liger_kernel", "torch_compile", "padding_free", "group_by_length",
                   "learning_rate", "lora_r", "lora_alpha", "lora_dropout")


def effective_settings(values: dict) -> dict:
    """The settings a trainer ran with, read back once it is built (not the run's config, which
    says what was asked: TRL may turn a flag off, the device may rule one out). Stored as
    result["effective"] and shown on the run page; JSON scalars only, in a fixed order."""
    keep = {k: v for k, v in values.items() if v is None or isinstance(v, (bool, int, float, str))}
    return {k: keep[k] for k in (*[k for k in EFFECTIVE_ORDER if k in keep], *sorted(set(keep) - set(EFFECTIVE_ORDER)))}


def lora_effective(model) -> dict:
    """r, alpha and dropout of a peft model's adapter as peft holds them; {} without one."""
    configs = getattr(model, "peft_config", None)
    if not isinstance(configs, dict) or not configs:
        return {}
    lora = next(iter(configs.values()))
    return {"lora_r": lora.r, "lora_alpha": lora.lora_alpha, "lora_dropout": float(lora.lora_dropout)}


def trainer_effective(trainer) -> dict:
    """What a built Hugging Face trainer will really do (training.runs.results.effective_settings):
    read from its arguments and from the trainer itself, which TRL may have changed (DPO's
    padding_free is turned off in DPOTrainer.__init__; SFT's packing turns it on)."""
    args = trainer.args
    padding_free = getattr(trainer, "padding_free", getattr(args, "padding_free", False))
    return effective_settings({
        "bf16": bool(args.bf16),
        "gradient_checkpointing": bool(args.gradient_checkpointing),
        "use_liger_kernel": bool(args.use_liger_kernel),
        "torch_compile": bool(args.torch_compile),
        "padding_free": bool(padding_free),
        "group_by_length": getattr(args, "train_sampling_strategy", None) == "group_by_length",
        "learning_rate": args.learning_rate,
        **lora_effective(trainer.model),
        # KTO: the weights after the auto ones were filled (kto.class_weights).
        **{k: getattr(args, k) for k in ("desirable_weight", "undesirable_weight") if hasattr(args, k)},
        # Reward: RewardTrainer uses a margin column whenever the split has one (reward.prepare_columns),
        # so use_margin asked of a snapshot without margins (binary projects) trains without them.
        **({"use_margin": "margin" in trainer.train_dataset.column_names} if hasattr(args, "center_rewards_coefficient") else {}),
    })


def save(*, trainer, out_dir: Path) -> None:
    """Safetensors only: the full model, or the LoRA adapter (with a reward model's trained score
    head, which LoRA keeps through modules_to_save); the tokenizer beside it."""
    trainer.save_model(str(out_dir))
    trainer.processing_class.save_pretrained(str(out_dir))


def add_length_column(dataset, columns: tuple[str, ...]):
    """Length of the longer sequence of a pair, for LengthGroupedSampler (it reads this column)."""
    if LENGTH_COLUMN in dataset.column_names:
        dataset = dataset.remove_columns(LENGTH_COLUMN)

    def length(example):
        return {LENGTH_COLUMN: max(sum(len(example[c]) for c in group.split("+")) for group in columns)}

    return dataset.map(length, desc="Measuring lengths")


def load_tokenizer(path: Path | str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    if tokenizer.eos_token is None and tokenizer.sep_token is not None:
        # Encoders (MiniLM, BERT) have no eos token but end each text with [SEP]. TRL's
        # RewardTrainer appends the eos token to every text pair and fails on None; [SEP] is what
        # such a model was trained to see at the end, and the scorer (render_pair) appends the same.
        tokenizer.eos_token = tokenizer.sep_token
    if tokenizer.pad_token is None:
        # Right padding with the eos token: the attention mask hides it, and SequenceClassification
        # models find the last real token through config.pad_token_id.
        tokenizer.pad_token = tokenizer.eos_token
    if not getattr(tokenizer, "chat_template", None):
        # Encoders (MiniLM) and base models ship without one, yet snapshots of chat prompts are
        # conversational: a plain "role: content" transcript lets TRL tokenize them all the same.
        tokenizer.chat_template = PLAIN_CHAT_TEMPLATE
    return tokenizer


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def with_length_column(trainer_cls):
    """The trainer subclass that keeps the length column through Trainer's column pruning, so
    the length-grouped sampler can read it (the collators ignore it)."""

    class LengthGrouped(trainer_cls):
        prior_loss_sum = 0.0  # loss summed over the steps of earlier attempts (from the resumed checkpoint)

        def _set_signature_columns_if_needed(self):
            super()._set_signature_columns_if_needed()
            if LENGTH_COLUMN not in self._signature_columns:
                self._signature_columns = [*self._signature_columns, LENGTH_COLUMN]

        def _save_checkpoint(self, model, trial):
            super()._save_checkpoint(model, trial)
            # Trainer forgets the loss of earlier attempts on resume (train_loss averages this
            # attempt only): each checkpoint carries the sum so far, so a resumed run's
            # train_loss covers every step.
            if self.args.should_save:
                pending = getattr(self, "_tr_loss", None)
                total = self.prior_loss_sum + getattr(self, "_total_loss_scalar", 0.0) + (float(pending.item()) if pending is not None else 0.0)
                folder = Path(self._get_output_dir(trial=trial)) / f"checkpoint-{self.state.global_step}"
                if folder.is_dir():
                    (folder / LOSS_LEDGER).write_text(json.dumps({"loss_sum": total, "step": self.state.global_step}))

    LengthGrouped.__name__ = f"LengthGrouped{trainer_cls.__name__}"
    return LengthGrouped


def distribution(values) -> dict:
    """Summary and a 20-bin histogram, for the run page's margin chart."""
    import numpy as np

    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return {"count": 0}
    counts, edges = np.histogram(arr, bins=20)
    q = np.percentile(arr, [5, 25, 50, 75, 95])
    return {
        "count": int(arr.size),
        "nonpositive": int((arr <= 0).sum()),  # pairs the model does not rank right (margin at or below 0)
        "mean": float(arr.mean()),
        "std": float(arr.std()),
        "min": float(arr.min()),
        "p5": float(q[0]),
        "p25": float(q[1]),
        "p50": float(q[2]),
        "p75": float(q[3]),
        "p95": float(q[4]),
        "max": float(arr.max()),
        "histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
    }


# --- the run skeleton ----------------------------------------------------------------------------

def device_info() -> tuple[str, str, bool]:
    """(device type, a name for the run page, whether bf16 is supported). Under the launcher's
    torchrun the name says how many processes share the run (WORLD_SIZE)."""
    import os

    import torch

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if torch.cuda.is_available():
        idx = torch.cuda.current_device()
        name = f"cuda:{idx} {torch.cuda.get_device_name(idx)}" + (f" × {world} processes" if world > 1 else "")
        return "cuda", name, torch.cuda.is_bf16_supported()
    return "cpu", f"cpu ({torch.get_num_threads()} threads)" + (f" × {world} processes (gloo)" if world > 1 else ""), False


def split_path(folder: Path, fmt: str, split: str) -> Path:
    """The snapshot layout (annotation/exports): <format>/<split>.jsonl."""
    return Path(folder) / fmt / f"{split}.jsonl"


def load_split(folder: Path, fmt: str, split: str, cache_dir: Path):
    """One split of one snapshot format as a datasets.Dataset; None when the file is missing or empty."""
    from datasets import load_dataset

    path = split_path(folder, fmt, split)
    if not path.exists() or path.stat().st_size == 0:
        return None
    return load_dataset("json", data_files={split: str(path)}, split=split, cache_dir=str(cache_dir))


def last_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint: a worker killed while saving leaves a half-written folder,
    which must not be resumed from."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    found = []
    for child in folder.iterdir():
        if child.name.startswith("checkpoint-") and child.name.split("-")[-1].isdigit():
            found.append((int(child.name.split("-")[-1]), child))
    for _, path in sorted(found, reverse=True):
        weights = any(path.glob("*.safetensors"))
        if weights and (path / "trainer_state.json").exists() and (path / "optimizer.pt").exists():
            return path
    return None


def parameters_on_disk(path: Path) -> int:
    """Parameter count from the safetensors headers, without loading the weights: the config's
    auto fields (gradient checkpointing) depend on it, and the load dtype depends on the config."""
    from safetensors import safe_open

    total = 0
    for file in sorted(Path(path).glob("*.safetensors")):
        with safe_open(str(file), framework="numpy") as fh:
            for key in fh.keys():
                n = 1
                for dim in fh.get_slice(key).get_shape():
                    n *= dim
                total += n
    return total


def load_dtype(cfg: TrainConfig, *, use_lora: bool):
    """The dtype the base weights are loaded in. A LoRA base is frozen, so it may sit in bf16 when
    the run trains in bf16 (cfg.bf16, already False on CPU and when the user said no); full
    training keeps fp32 master weights and runs the matmuls in bf16 through autocast."""
    import torch

    return torch.bfloat16 if (use_lora and cfg.bf16) else torch.float32


def progress_callback(progress, metrics) -> Any:
    """A TrainerCallback that reports through the Progress protocol (training/recipes/catalog.py):
    steps, metric points under the recipe's names (Metric.sources), checkpoints; stops cleanly on
    cancel or lost ownership."""
    from transformers import TrainerCallback

    mapping = [(m.key, src) for m in metrics for src in m.names()]

    class RunCallback(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            progress.steps(step=state.global_step, total=state.max_steps)

        def on_step_end(self, args, state, control, **kwargs):
            # The trainer saves right after this: a worker presumed dead must not write a checkpoint
            # into the folder the run's new owner resumes from (rank 0 asks the row; it alone writes).
            owns = getattr(progress, "owns", None)
            if control.should_save and getattr(progress, "is_main", True) and owns is not None and not owns():
                control.should_save = False
            if progress.should_stop():
                control.should_training_stop = True
                control.should_save = False
            return control

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            if "loss" not in logs:
                return
            point = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4)}
            for key, src in mapping:
                if key not in point and logs.get(src) is not None:
                    point[key] = float(logs[src])
            progress.metrics(point)
            parts = " ".join(f"{k}={v:.4g}" for k, v in point.items() if k not in ("step", "epoch"))
            progress.say(f"step {state.global_step}/{state.max_steps} {parts}")
            if progress.should_stop():
                control.should_training_stop = True

        def on_save(self, args, state, control, **kwargs):
            path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            record = getattr(progress, "checkpoint", None)
            if record is not None:
                record(path=path, step=state.global_step)
            else:
                progress.say(f"checkpoint saved at step {state.global_step}")
            if progress.should_stop():
                control.should_training_stop = True

    return RunCallback()


@dataclasses.dataclass
class Hooks:
    """What a recipe module plugs into the skeleton."""

    trainer_build: Callable  # (cfg, model, tokenizer, train_ds, use_lora, output_dir, device_type, callbacks, test_ds) -> trainer
    evaluate: Callable  # (trainer, cfg, test_ds) -> dict
    model_load: Callable = causal_lm_load  # (path, dtype) -> model
    samples: Callable | None = None  # (trainer, cfg, test_ds, base_path) -> list[dict]
    columns: tuple[str, ...] = ()  # required columns of the split
    prepare: Callable | None = None  # (train_ds, test_ds, cfg, ctx) -> (train_ds, test_ds, notes: dict), before the trainer
    baseline: Callable | None = None  # (trainer, cfg, test_ds) -> dict: the base model on the test split, before training


def train_with_trainer(ctx, recipe, hooks: Hooks) -> dict:
    """The run, top to bottom, for a recipe built on a Hugging Face trainer."""
    progress = ctx.progress
    device_type, device_name, bf16_ok = device_info()
    folder = Path(ctx.snapshot_dir)
    progress.say(f"{recipe.label} on {device_name}; snapshot {folder}")
    cache = Path(ctx.work_dir) / "hf-cache"
    train_ds = load_split(folder, recipe.reads, "train", cache)
    test_ds = load_split(folder, recipe.reads, "test", cache)
    train_file = split_path(folder, recipe.reads, "train")
    if train_ds is None or len(train_ds) < recipe.min_train_rows:
        raise ValueError(f"{train_file}: the snapshot has no {recipe.reads} {recipe.row_noun} to train on (the file is empty or missing)")
    missing = set(hooks.columns) - set(train_ds.column_names)
    if missing:
        raise ValueError(f"{train_file}: missing columns {', '.join(sorted(missing))}")
    progress.say(f"loaded {len(train_ds)} train and {len(test_ds) if test_ds is not None else 0} test {recipe.row_noun} from {recipe.reads}/")
    progress.check()

    n_params = parameters_on_disk(ctx.base_model_path)
    cfg = config_resolve(recipe.method, ctx.config, use_lora=ctx.use_lora, device_type=device_type, bf16_supported=bf16_ok,
                         n_params=n_params)
    notes = {}
    if hooks.prepare is not None:
        train_ds, test_ds, notes = hooks.prepare(train_ds=train_ds, test_ds=test_ds, cfg=cfg, ctx=ctx)
    tokenizer = load_tokenizer(ctx.base_model_path)
    # Text rows become one user turn for an instruct model (training/core/chat.py), as everywhere else it sees prompts.
    # The samples show the rows as stored (and render their prompts by the same rule themselves).
    stored_test_ds = test_ds
    train_ds, test_ds = chat_rows(train_ds, tokenizer), chat_rows(test_ds, tokenizer)
    from transformers import set_seed

    # Seeded before loading: weights the checkpoint lacks (a reward model's score head) are drawn
    # at load time, so the same config gives the same run.
    set_seed(cfg.seed)
    model = hooks.model_load(path=ctx.base_model_path, dtype=load_dtype(cfg, use_lora=ctx.use_lora))
    progress.say(f"model {ctx.base_model_name}: {count_parameters(model) / 1e6:.1f}M parameters in {str(model.dtype).replace('torch.', '')}, "
                 f"{'LoRA' if ctx.use_lora else 'full'}, lr {cfg.learning_rate:g}, bf16 {cfg.bf16}, "
                 f"gradient checkpointing {cfg.gradient_checkpointing}, liger {cfg.use_liger_kernel}, padding-free {cfg.padding_free}")
    progress.check()

    checkpoints = Path(ctx.checkpoint_dir)
    trainer = hooks.trainer_build(cfg=cfg, model=model, tokenizer=tokenizer, train_ds=train_ds, use_lora=ctx.use_lora,
                                  output_dir=checkpoints, device_type=device_type, callbacks=ctx.callbacks, test_ds=test_ds)
    progress.check()
    effective = trainer_effective(trainer)
    progress.say("trainer uses " + ", ".join(f"{k} {v}" for k, v in effective.items()))
    resume = last_checkpoint(checkpoints)
    prior = 0.0
    if resume is not None:
        ledger = resume / LOSS_LEDGER
        if ledger.exists():
            prior = float(json.loads(ledger.read_text()).get("loss_sum", 0.0))
        progress.say(f"resuming from {resume.name}")
    trainer.prior_loss_sum = prior
    base = {}
    if hooks.baseline is not None:
        # Measured before the first step and kept beside the checkpoints, so a resumed run still has it.
        saved = checkpoints / "baseline.json"
        if saved.exists():
            base = json.loads(saved.read_text())
        elif resume is None:
            progress.say("measuring the base model on the test split")
            base = hooks.baseline(trainer=trainer, cfg=cfg, test_ds=test_ds)
            checkpoints.mkdir(parents=True, exist_ok=True)
            saved.write_text(json.dumps(base))
    started = time.monotonic()
    output = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    progress.check()  # training stopped early because of a cancel or a takeover

    step = trainer.state.global_step
    resumed_step = int(resume.name.split("-")[-1]) if resume else 0
    this_attempt = max(step - resumed_step, 0)
    train_loss = (prior + output.training_loss * this_attempt) / step if step else output.training_loss
    # Saved before evaluating: an evaluation that fails must not cost the trained model.
    if getattr(trainer.args, "should_save", True):
        save(trainer=trainer, out_dir=Path(ctx.out_dir))
        progress.say(f"saved the {'adapter' if ctx.use_lora else 'model'} to {ctx.out_dir}")
    progress.say("training done; evaluating on the test split")
    result = {
        "train_seconds": round(time.monotonic() - started, 2),
        "train_loss": train_loss,
        "global_step": step,
        "resumed_from_step": resumed_step or None,
        "resolved_config": dataclasses.asdict(cfg),  # what the device made of the "auto" settings
        "effective": effective,  # what the trainer made of them (the run page's "Settings the trainer used")
        **notes,
    }
    try:
        result["test"] = {**hooks.evaluate(trainer=trainer, cfg=cfg, test_ds=test_ds), **base}
    except Exception as exc:  # the model is saved; say what went wrong instead of losing the run
        log.exception("evaluation failed")
        progress.say(f"evaluation failed: {type(exc).__name__}: {exc}")
        result["test"] = {"error": f"evaluation failed: {type(exc).__name__}: {exc}"[:2000]}
    progress.check()
    if hooks.samples is not None:
        result["samples"] = hooks.samples(trainer=trainer, cfg=cfg, test_ds=stored_test_ds, base_path=Path(ctx.base_model_path))
    return result


# --- samples: the trained policy beside its base on held-out prompts -------------------------------

def generate(model, tokenizer, prompts, *, max_new_tokens: int) -> list[str]:
    import torch

    device = next(model.parameters()).device
    model.eval()
    texts = []
    for prompt in prompts:
        enc = tokenizer(render_prompt(tokenizer, prompt), return_tensors="pt", add_special_tokens=special_tokens(tokenizer, prompt)).to(device)
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        texts.append(tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True).strip())
    return texts


def held_out_rows(test_ds, n: int) -> list[dict]:
    """The first n test rows with distinct prompts."""
    rows, seen = [], set()
    if test_ds is None:
        return rows
    for ex in test_ds:
        key = repr(ex["prompt"])
        if key not in seen:
            seen.add(key)
            rows.append(ex)
        if len(rows) >= n:
            break
    return rows


def policy_samples(*, trainer, cfg: PolicyConfig, test_ds, base_path: Path, keep: tuple[str, ...] = (), model_load=causal_lm_load) -> list[dict]:
    """Greedy answers of the trained policy beside its reference (reference_of) on cfg.sample_prompts
    held-out prompts, with the row's `keep` columns: a policy recipe's `samples` hook."""
    n, max_new_tokens = cfg.sample_prompts, cfg.sample_max_new_tokens
    if not n:
        return []
    rows = held_out_rows(test_ds, n)
    if not rows:
        return []
    prompts = [r["prompt"] for r in rows]
    model, tokenizer = trainer.model, trainer.processing_class
    policy = generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens)
    with reference_of(trainer, base_path=base_path, model_load=model_load) as ref:
        reference = generate(ref, tokenizer, prompts, max_new_tokens=max_new_tokens)
    return [{"prompt": r["prompt"], "policy": p, "reference": q, **{k: r[k] for k in keep if k in r}}
            for r, p, q in zip(rows, policy, reference)]


def completion_logps(model, tokenizer, rows, *, batch_size: int) -> list[float]:
    """Sum of log π(completion tokens | prompt) per row ({prompt, completion}, text or chat)."""
    import torch

    device = next(model.parameters()).device
    model.eval()
    seqs = []
    for row in rows:
        prompt, completion = row["prompt"], row["completion"]
        if is_conversational(prompt):
            full = tokenizer.apply_chat_template(prompt + completion, tokenize=False)
            head = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        else:
            head, full = prompt, prompt + (completion if isinstance(completion, str) else str(completion))
        p_ids = tokenizer(head, add_special_tokens=False)["input_ids"]
        f_ids = tokenizer(full, add_special_tokens=False)["input_ids"]
        seqs.append((f_ids, len(p_ids)))
    out = []
    pad = tokenizer.pad_token_id
    for start in range(0, len(seqs), batch_size):
        batch = seqs[start : start + batch_size]
        width = max(len(s) for s, _ in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, (s, _) in enumerate(batch):
            ids[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = 1
        ids, mask = ids.to(device), mask.to(device)
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        for i, (s, n_prompt) in enumerate(batch):
            lo = max(n_prompt - 1, 0)  # logp[j] predicts token j+1
            out.append(float(logp[i, lo : len(s) - 1].sum()))
    return out


class reference_of:
    """The frozen reference of a policy trainer, as a context manager: the adapter switched off
    (LoRA), the reference the trainer keeps, or the base model loaded again."""

    def __init__(self, trainer, *, base_path: Path, model_load=causal_lm_load):
        self.trainer, self.model_load, self.base_path = trainer, model_load, base_path
        self._ctx = None

    def __enter__(self):
        from peft import PeftModel

        model = self.trainer.model
        if isinstance(model, PeftModel):
            self._ctx = model.disable_adapter()
            self._ctx.__enter__()
            return model
        ref = getattr(self.trainer, "ref_model", None)
        if ref is not None:
            return ref
        return self.model_load(path=self.base_path, dtype=model.dtype).to(next(model.parameters()).device)

    def __exit__(self, *exc):
        if self._ctx is not None:
            self._ctx.__exit__(*exc)
