"""Training throughput: Arbiter's reward-model and DPO recipes against plain TRL trainers with
default settings, on the same model, data, batch size, learning rate and number of steps.

    python bench/train_throughput.py --model-size tiny --device cpu
    python bench/train_throughput.py --model-size 0.5b --device cuda

Self-contained: needs torch, transformers, trl, peft, datasets (no Django, no database, no
downloads). The model is built from a config with random weights (tiny: a 2-layer Llama; 0.5b:
the Qwen2.5-0.5B shape), the tokenizer is a word-level one built here, and the preference data
are synthetic with a realistic spread of lengths (log-normal prompts and responses), plus a rule
(chosen answers carry a marker word) so that accuracy can be compared.

Throughput counts real tokens (attention mask), so padding shows up as lost throughput. The
steady-state figure leaves out the first steps (allocation, kernel selection, compilation).
MFU = 6·N·tokens/s (8·N for DPO: the reference forward) / the GPU's dense bf16 peak; attention
FLOPs are left out, so it is a slight underestimate.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the recipes, without Django

PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "GH200": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12, "L4": 121e12}
SIZES = {
    # hidden, intermediate, layers, heads, kv heads, vocab, (prompt median, response median, max length)
    "tiny": dict(hidden=64, intermediate=128, layers=2, heads=4, kv=2, vocab=2048, lengths=(12, 24, 160)),
    "0.5b": dict(hidden=896, intermediate=4864, layers=24, heads=14, kv=2, vocab=151936, lengths=(96, 160, 1024)),
}


def build_tokenizer(words: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["<pad>", "<eos>", "<unk>", "good", "bad"] + [f"w{i}" for i in range(words)])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")


def build_model(size: str, folder: Path, seed: int) -> int:
    """Random weights from a config, saved as safetensors with the tokenizer; returns N (parameters)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    s = SIZES[size]
    tokenizer = build_tokenizer(min(s["vocab"], 4096) - 5)
    torch.manual_seed(seed)
    common = dict(vocab_size=s["vocab"], hidden_size=s["hidden"], intermediate_size=s["intermediate"], num_hidden_layers=s["layers"],
                  num_attention_heads=s["heads"], num_key_value_heads=s["kv"], max_position_embeddings=4096, tie_word_embeddings=True,
                  pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None)
    # The Llama architecture in Qwen2.5-0.5B's shape (Qwen2 differs by q/k/v biases only): for a
    # qwen2 folder AutoTokenizer would swap our word-level tokenizer for Qwen2's BPE class.
    model = LlamaForCausalLM(LlamaConfig(**common))
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


def synthetic_pairs(n: int, size: str, seed: int) -> list[dict]:
    rng = random.Random(seed)
    prompt_median, response_median, max_len = SIZES[size]["lengths"]
    words = min(SIZES[size]["vocab"], 4096) - 5

    def length(median):
        return max(2, min(int(rng.lognormvariate(math.log(median), 0.6)), max_len // 3))

    def text(k):
        return " ".join(f"w{rng.randrange(words)}" for _ in range(k))

    rows = []
    for _ in range(n):
        p = text(length(prompt_median))
        c, r = text(length(response_median)), text(length(response_median))
        rows.append({"prompt": p, "chosen": f" good {c}", "rejected": f" bad {r}"})
    return rows


class Meter:
    """Counts real and padded tokens per batch (collator wrapper) and times steps (callback)."""

    def __init__(self, collator):
        self.collator, self.real, self.padded, self.times = collator, [], [], []

    def __call__(self, examples):
        batch = self.collator(examples)
        mask = batch["attention_mask"]
        self.real.append(int(mask.sum()))
        self.padded.append(int(mask.numel()))
        return batch

    def callback(self):
        from transformers import TrainerCallback

        meter = self

        class Clock(TrainerCallback):
            def on_step_begin(self, args, state, control, **kw):
                if not meter.times:
                    meter.times.append(time.perf_counter())

            def on_step_end(self, args, state, control, **kw):
                import torch

                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                meter.times.append(time.perf_counter())

        return Clock()

    def summary(self, warm: int) -> dict:
        steps = len(self.times) - 1
        warm = min(warm, max(0, steps - 2))
        total_time = self.times[-1] - self.times[0]
        steady_time = self.times[-1] - self.times[warm]
        # The dataloader collates one batch ahead; the batches a step consumed are the first `steps`.
        real = self.real[:steps]
        return {
            "steps": steps,
            "tokens": sum(real),
            "padding_efficiency": sum(real) / max(1, sum(self.padded[:steps])),
            "seconds": total_time,
            "tokens_per_s": sum(real) / total_time,
            "steady_tokens_per_s": sum(real[warm:]) / steady_time if steady_time > 0 else float("nan"),
        }


def common_args(a, out: Path) -> dict:
    return dict(output_dir=str(out), per_device_train_batch_size=a.batch_size, learning_rate=a.lr, max_steps=a.steps,
                max_length=SIZES[a.model_size]["lengths"][2], report_to="none", save_strategy="no", logging_steps=10,
                disable_tqdm=True, use_cpu=a.device == "cpu", seed=a.seed)


def run_plain(method: str, a, model_dir: Path, train, test, out: Path):
    """TRL exactly as its docs show it: a model path, the data, the defaults."""
    from trl import DPOConfig, DPOTrainer, RewardConfig, RewardTrainer

    from training.recipes import reward

    tok = _tokenizer(model_dir)
    if method == "reward":
        trainer = RewardTrainer(model=str(model_dir), args=RewardConfig(**common_args(a, out)), train_dataset=train, processing_class=tok)
    else:
        trainer = DPOTrainer(model=str(model_dir), args=DPOConfig(**common_args(a, out)), train_dataset=train, processing_class=tok)
    meter = Meter(trainer.data_collator)
    trainer.data_collator = meter
    trainer.add_callback(meter.callback())
    trainer.train()
    if method == "reward":
        return meter, _reward_accuracy(trainer, reward, test, a)
    trainer.args.train_sampling_strategy = "sequential"
    m = trainer.evaluate(eval_dataset=test)
    return meter, m.get("eval_rewards/accuracies")


def run_ours(method: str, a, model_dir: Path, train, test, out: Path, n_params: int):
    import torch

    from training.recipes import dpo, reward
    from training.recipes.base import config_resolve

    recipe = reward if method == "reward" else dpo
    bf16_ok = a.device == "cuda" and torch.cuda.is_bf16_supported()
    values = {"per_device_train_batch_size": a.batch_size, "learning_rate": a.lr, "max_steps": a.steps, "warmup_steps": 0.0,
              "lr_scheduler_type": "linear", "max_length": SIZES[a.model_size]["lengths"][2], "save_steps": 10**6,
              "logging_steps": 10, "seed": a.seed, "torch_compile": a.compile}
    if method == "dpo":
        values["precompute_ref_log_probs"] = a.precompute_ref
    cfg = config_resolve(method, values, use_lora=False, device_type=a.device, bf16_supported=bf16_ok, n_params=n_params)
    tok = _tokenizer(model_dir)
    model = recipe.model_load(path=model_dir, dtype=torch.float32)
    trainer = recipe.trainer_build(cfg=cfg, model=model, tokenizer=tok, train_ds=train, use_lora=False, output_dir=out, device_type=a.device)
    from transformers.trainer_utils import SaveStrategy

    trainer.args.save_strategy = SaveStrategy.NO  # the runner checkpoints; a benchmark has no use for it
    meter = Meter(trainer.data_collator)
    trainer.data_collator = meter
    trainer.add_callback(meter.callback())
    trainer.train()
    if method == "reward":
        return meter, _reward_accuracy(trainer, reward, test, a), cfg
    return meter, dpo.evaluate(trainer=trainer, cfg=cfg, test_ds=test).get("accuracy"), cfg


def _tokenizer(model_dir):
    from training.recipes.common import load_tokenizer

    return load_tokenizer(model_dir)


def _reward_accuracy(trainer, reward, test, a) -> float:
    prepared = trainer._prepare_dataset(test, trainer.processing_class, trainer.args, "test")
    pairs = [{"chosen_ids": ex["chosen_ids"], "rejected_ids": ex["rejected_ids"]} for ex in prepared]
    chosen, rejected = reward.pair_rewards(trainer.model, trainer.processing_class, pairs, batch_size=16, bf16=a.device == "cuda")
    return sum(c > r for c, r in zip(chosen, rejected)) / max(1, len(pairs))


def peak_flops(device: str) -> float | None:
    if device != "cuda":
        return None
    import torch

    name = torch.cuda.get_device_name(0)
    for key, value in sorted(PEAK_BF16.items(), key=lambda kv: -len(kv[0])):
        if key in name:
            return value
    return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model-size", choices=sorted(SIZES), default="tiny")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--method", choices=["reward", "dpo", "both"], default="both")
    p.add_argument("--pairs", type=int, default=None, help="training pairs (default: 512 tiny, 3072 0.5b)")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps per run (default: one epoch)")
    p.add_argument("--batch-size", type=int, default=8, help="TRL's default per-device batch size")
    p.add_argument("--lr", type=float, default=None, help="same for both (default: 1e-3 tiny, 1e-5 0.5b reward; DPO 5e-6 at 0.5b)")
    p.add_argument("--compile", action="store_true", help="torch.compile in our recipe (GPU)")
    p.add_argument("--precompute-ref", action="store_true", help="our DPO precomputes reference log-probs")
    p.add_argument("--warm-steps", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="write the figures here too")
    a = p.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import datasets
    import torch
    from transformers.utils import logging as hf_logging

    datasets.disable_progress_bars()
    hf_logging.set_verbosity_error()
    if a.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no GPU visible", file=sys.stderr)
        return 2
    a.pairs = a.pairs or (512 if a.model_size == "tiny" else 3072)
    a.steps = a.steps or a.pairs // a.batch_size
    work = Path(tempfile.mkdtemp(prefix="train-bench-"))
    n_params = build_model(a.model_size, work / "model", a.seed)
    n_flop = n_params - (0 if a.model_size == "tiny" else SIZES[a.model_size]["vocab"] * SIZES[a.model_size]["hidden"])  # embedding lookups are free
    rows = synthetic_pairs(a.pairs + 256, a.model_size, a.seed)
    train, test = datasets.Dataset.from_list(rows[: a.pairs]), datasets.Dataset.from_list(rows[a.pairs :])
    device_name = torch.cuda.get_device_name(0) if a.device == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    peak = peak_flops(a.device)
    print(f"model {a.model_size}: {n_params / 1e6:.1f}M parameters ({n_flop / 1e6:.1f}M in matmuls), device {device_name}, "
          f"{a.pairs} pairs, {a.steps} steps of {a.batch_size} pairs")

    methods = ["reward", "dpo"] if a.method == "both" else [a.method]
    figures = {}
    for method in methods:
        lr = a.lr or ({"tiny": 1e-3}.get(a.model_size) or (1e-5 if method == "reward" else 5e-6))
        a.lr, saved_lr = lr, a.lr
        flops_per_token = (8 if method == "dpo" else 6) * n_flop
        result = {}
        for label in ("plain TRL", "Arbiter recipe"):
            if a.device == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            out = work / f"{method}-{label.split()[0]}"
            if label == "plain TRL":
                meter, acc = run_plain(method, a, work / "model", train, test, out)
                note = "defaults: gradient checkpointing on, bf16 autocast, random batches"
            else:
                meter, acc, cfg = run_ours(method, a, work / "model", train, test, out, n_params)
                note = (f"bf16 {cfg.bf16}, gradient checkpointing {cfg.gradient_checkpointing}, length-grouped {cfg.group_by_length}, "
                        f"compile {cfg.torch_compile}, sdpa" + (", precomputed reference" if method == "dpo" and a.precompute_ref else ""))
            s = meter.summary(a.warm_steps)
            s["accuracy"] = acc
            s["mfu"] = s["steady_tokens_per_s"] * flops_per_token / peak if peak else None
            s["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9 if a.device == "cuda" else None
            s["settings"] = note
            result[label] = s
            mfu = f", MFU {s['mfu']:.1%}" if s["mfu"] is not None else ""
            mem = f", peak {s['peak_memory_gb']:.1f} GB" if s["peak_memory_gb"] else ""
            print(f"  {method:6} {label:15} {s['tokens_per_s']:>10,.0f} tok/s overall, {s['steady_tokens_per_s']:>10,.0f} steady{mfu}; "
                  f"padding efficiency {s['padding_efficiency']:.0%}; test accuracy {acc:.3f}{mem}  [{note}]", flush=True)
            del meter
            import gc

            gc.collect()
        ratio = result["Arbiter recipe"]["steady_tokens_per_s"] / result["plain TRL"]["steady_tokens_per_s"]
        acc_gap = (result["Arbiter recipe"]["accuracy"] or 0) - (result["plain TRL"]["accuracy"] or 0)
        result["ratio"] = ratio
        figures[method] = result
        print(f"RATIO {method}: Arbiter recipe / plain TRL = {ratio:.2f}x steady-state tokens/s "
              f"(overall {result['Arbiter recipe']['tokens_per_s'] / result['plain TRL']['tokens_per_s']:.2f}x); "
              f"accuracy difference {acc_gap:+.3f}", flush=True)
        a.lr = saved_lr
    if a.json:
        a.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(a).items()}, "device": device_name, "figures": figures}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
