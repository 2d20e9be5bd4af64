"""Training throughput: Arbiter's reward-model, DPO, SFT and KTO recipes against plain TRL
trainers with default settings, on the same model, data, learning rate and number of examples.

    python bench/train_throughput.py --model-size tiny --device cpu
    python bench/train_throughput.py --model-size 0.5b --device cuda            # all four methods
    python bench/train_throughput.py --model-size 0.5b --device cuda --method sft --micro-batch 32

On a GPU our recipe runs with its GPU defaults: bf16, fused AdamW, Liger kernels when the
liger-kernel package is importable (optional), padding-free batches where the method allows and
flash attention is present (--padding-free forces it), and a larger micro-batch (--micro-batch,
default 32 on CUDA, the plain-TRL batch on CPU). Plain TRL keeps its documented defaults.

Self-contained: needs torch, transformers, trl, peft, datasets (no Django, no database, no
downloads). The model is built from a config with random weights (tiny: a 2-layer Llama; 0.5b:
the Qwen2.5-0.5B shape), the tokenizer is a word-level one built here, and the preference data
are synthetic with a realistic spread of lengths (log-normal prompts and responses), plus a rule
(chosen answers carry a marker word) so that accuracy can be compared.

Throughput counts real tokens (attention mask), so padding shows up as lost throughput. The
steady-state figure leaves out the first steps (allocation, kernel selection, compilation).
MFU = k·N·tokens/s / the GPU's dense bf16 peak, k = 6 (reward, SFT), 8 for DPO (the reference
forward; 6 with a precomputed reference), 12 for KTO (reference forward, and the policy and
reference forwards of the mismatched KL batch). N counts every matmul weight: the LM head of a
causal LM (tied to the embedding) is a matmul, a reward model has none. Attention FLOPs are left
out, so it is a slight underestimate. SFT's "accuracy" column is the test loss (lower is better).
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


def llama_parts(s: dict) -> tuple:
    """The word-level tokenizer and the LlamaConfig arguments of a SIZES row (model shape and the
    tokenizer's special tokens); bench/rl_throughput.py builds its policy and reward model from them too."""
    tokenizer = build_tokenizer(min(s["vocab"], 4096) - 5)
    config = dict(vocab_size=s["vocab"], hidden_size=s["hidden"], intermediate_size=s["intermediate"], num_hidden_layers=s["layers"],
                  num_attention_heads=s["heads"], num_key_value_heads=s["kv"], max_position_embeddings=4096, tie_word_embeddings=True,
                  pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None)
    return tokenizer, config


def build_model(size: str, folder: Path, seed: int) -> int:
    """Random weights from a config, saved as safetensors with the tokenizer; returns N (parameters)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer, common = llama_parts(SIZES[size])
    torch.manual_seed(seed)
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


def method_rows(method: str, pairs: list[dict]) -> list[dict]:
    """The same pairs in the file format each method reads: preference, sft, unpaired."""
    if method in ("reward", "dpo"):
        return pairs
    if method == "sft":
        return [{"prompt": r["prompt"], "completion": r["chosen"]} for r in pairs]
    out = []
    for i, r in enumerate(pairs):  # unpaired: one row per pair, alternating, so both classes are present
        good = i % 2 == 0
        out.append({"prompt": r["prompt"], "completion": r["chosen"] if good else r["rejected"], "label": good})
    return out


class Meter:
    """Counts real and padded tokens per batch (collator wrapper) and times steps (callback)."""

    def __init__(self, collator):
        self.collator, self.real, self.padded, self.times = collator, [], [], []

    def __call__(self, examples):
        batch = self.collator(examples)
        mask = batch.get("attention_mask")
        if mask is None:  # padding-free: one row of concatenated sequences, every position real
            ids = batch["input_ids"]
            self.real.append(int(ids.numel()))
            self.padded.append(int(ids.numel()))
        else:
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


def common_args(a, out: Path, batch_size: int) -> dict:
    return dict(output_dir=str(out), per_device_train_batch_size=batch_size, learning_rate=a.lr, max_steps=a.steps,
                max_length=SIZES[a.model_size]["lengths"][2], report_to="none", save_strategy="no", logging_steps=10,
                disable_tqdm=True, use_cpu=a.device == "cpu", seed=a.seed)


def run_plain(method: str, a, model_dir: Path, train, test, out: Path):
    """TRL exactly as its docs show it: a model path, the data, the defaults."""
    import trl

    tok = _tokenizer(model_dir)
    trainer_cls, args_cls = {"reward": (trl.RewardTrainer, trl.RewardConfig), "dpo": (trl.DPOTrainer, trl.DPOConfig),
                             "sft": (trl.SFTTrainer, trl.SFTConfig), "kto": (trl.KTOTrainer, trl.KTOConfig)}[method]
    trainer = trainer_cls(model=str(model_dir), args=args_cls(**common_args(a, out, a.batch_size)), train_dataset=train, processing_class=tok)
    return _measure(trainer, method, a, test, cfg=None)


def run_ours(method: str, a, model_dir: Path, train, test, out: Path, n_params: int):
    import torch

    from training.recipes import catalog
    from training.recipes.base import config_resolve
    from training.recipes.common import causal_lm_load, load_dtype

    recipe = catalog.get(method)
    module = __import__(recipe.module, fromlist=["trainer_build"])
    bf16_ok = a.device == "cuda" and torch.cuda.is_bf16_supported()
    values = {"per_device_train_batch_size": a.micro_batch, "learning_rate": a.lr, "max_steps": a.our_steps, "warmup_steps": 0.0,
              "lr_scheduler_type": "linear", "max_length": SIZES[a.model_size]["lengths"][2], "save_steps": 10**6,
              "logging_steps": 10, "seed": a.seed, "torch_compile": a.compile}
    if a.liger is not None:
        values["use_liger_kernel"] = a.liger
    if a.padding_free is not None and recipe.config_class.PADDING_FREE_SUPPORTED:
        values["padding_free"] = a.padding_free
    if method in ("dpo", "kto"):
        values["precompute_ref_log_probs"] = a.precompute_ref
    if method in ("dpo", "kto", "sft"):
        values["sample_prompts"] = 0
    cfg = config_resolve(method, values, use_lora=False, device_type=a.device, bf16_supported=bf16_ok, n_params=n_params)
    tok = _tokenizer(model_dir)
    model_load = getattr(module, "model_load", causal_lm_load)  # the policy recipes load a causal LM (common.Hooks)
    model = model_load(path=model_dir, dtype=load_dtype(cfg, use_lora=False))
    if a.device == "cuda":
        model = model.to("cuda")
    trainer = module.trainer_build(cfg=cfg, model=model, tokenizer=tok, train_ds=train, use_lora=False, output_dir=out,
                                   device_type=a.device, test_ds=test if method in ("sft",) or (method == "dpo" and a.precompute_ref) else None)
    from transformers.trainer_utils import SaveStrategy

    trainer.args.save_strategy = SaveStrategy.NO  # the runner checkpoints; a benchmark has no use for it
    meter, acc = _measure(trainer, method, a, test, cfg=cfg, module=module)
    return meter, acc, cfg


def _measure(trainer, method, a, test, *, cfg, module=None):
    meter = Meter(trainer.data_collator)
    trainer.data_collator = meter
    trainer.add_callback(meter.callback())
    trainer.train()
    trainer.args.train_sampling_strategy = "sequential"
    if method == "reward":
        from training.recipes import reward

        return meter, _reward_accuracy(trainer, reward, test, a)
    if method == "dpo":
        if module is not None:
            return meter, module.evaluate(trainer=trainer, cfg=cfg, test_ds=test).get("accuracy")
        return meter, trainer.evaluate(eval_dataset=test).get("eval_rewards/accuracies")
    if method == "sft":
        m = trainer.evaluate(eval_dataset=test if trainer.eval_dataset is None else None)
        return meter, m.get("eval_loss", m.get("test_loss"))
    from training.recipes import kto

    eval_cfg = cfg or kto.KTOConfig(beta=trainer.args.beta, per_device_eval_batch_size=16)
    return meter, kto.evaluate(trainer=trainer, cfg=eval_cfg, test_ds=test).get("accuracy")


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


METHODS = ("reward", "dpo", "sft", "kto")
FLOPS_K = {"reward": 6, "dpo": 8, "sft": 6, "kto": 12}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model-size", choices=sorted(SIZES), default="tiny")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--method", choices=[*METHODS, "all", "both"], default="all", help="both: reward and DPO (the earlier figures)")
    p.add_argument("--pairs", type=int, default=None, help="training pairs (default: 512 tiny, 3072 0.5b)")
    p.add_argument("--steps", type=int, default=None, help="plain TRL's optimizer steps (default: one epoch)")
    p.add_argument("--batch-size", type=int, default=8, help="plain TRL's per-device batch size (TRL's default)")
    p.add_argument("--micro-batch", type=int, default=None, help="our recipe's per-device batch (default: 32 on CUDA, --batch-size on CPU); "
                   "it sees the same examples in proportionally fewer steps")
    p.add_argument("--lr", type=float, default=None, help="same for both (default: 1e-3 tiny; at 0.5b 1e-5 reward and SFT, 5e-6 DPO and KTO)")
    p.add_argument("--compile", action="store_true", help="torch.compile in our recipe (GPU)")
    p.add_argument("--liger", dest="liger", action="store_true", default=None, help="force Liger kernels on (default: auto)")
    p.add_argument("--no-liger", dest="liger", action="store_false", help="force Liger kernels off")
    p.add_argument("--padding-free", dest="padding_free", action="store_true", default=None,
                   help="force padding-free batches where the method allows (default: auto, needs flash attention)")
    p.add_argument("--no-padding-free", dest="padding_free", action="store_false")
    p.add_argument("--precompute-ref", action="store_true", help="our DPO/KTO precompute reference log-probs")
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
    a.micro_batch = a.micro_batch or (32 if a.device == "cuda" else a.batch_size)
    a.our_steps = max(1, a.steps * a.batch_size // a.micro_batch)  # the same examples
    work = Path(tempfile.mkdtemp(prefix="train-bench-"))
    n_params = build_model(a.model_size, work / "model", a.seed)
    embed = SIZES[a.model_size]["vocab"] * SIZES[a.model_size]["hidden"]
    rows = synthetic_pairs(a.pairs + 256, a.model_size, a.seed)
    device_name = torch.cuda.get_device_name(0) if a.device == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    peak = peak_flops(a.device)
    print(f"model {a.model_size}: {n_params / 1e6:.1f}M parameters, device {device_name}, {a.pairs} examples; plain TRL "
          f"{a.steps} steps of {a.batch_size}, ours {a.our_steps} steps of {a.micro_batch}")

    methods = {"all": list(METHODS), "both": ["reward", "dpo"]}.get(a.method, [a.method])
    figures = {}
    for method in methods:
        lr = a.lr or ({"tiny": 1e-3}.get(a.model_size) or (1e-5 if method in ("reward", "sft") else 5e-6))
        a.lr, saved_lr = lr, a.lr
        data = method_rows(method, rows)
        train, test = datasets.Dataset.from_list(data[: a.pairs]), datasets.Dataset.from_list(data[a.pairs :])
        # A reward model has no LM head; a causal LM's tied head is a matmul over the whole vocabulary.
        n_flop = n_params - (embed if method == "reward" else 0)
        k = 6 if (method == "dpo" and a.precompute_ref) else FLOPS_K[method]
        result = {}
        for label in ("plain TRL", "Arbiter recipe"):
            if a.device == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            out = work / f"{method}-{label.split()[0]}"
            if label == "plain TRL":
                meter, acc = run_plain(method, a, work / "model", train, test, out)
                note = f"TRL defaults, batch {a.batch_size}"
            else:
                meter, acc, cfg = run_ours(method, a, work / "model", train, test, out, n_params)
                note = (f"batch {a.micro_batch}, bf16 {cfg.bf16}, gradient checkpointing {cfg.gradient_checkpointing}, "
                        f"length-grouped {cfg.group_by_length}, liger {cfg.use_liger_kernel}, padding-free {cfg.padding_free}, "
                        f"compile {cfg.torch_compile}, fused AdamW {a.device == 'cuda'}"
                        + (", precomputed reference" if method in ("dpo", "kto") and a.precompute_ref else ""))
            s = meter.summary(a.warm_steps)
            s["accuracy"] = acc
            s["mfu"] = s["steady_tokens_per_s"] * k * n_flop / peak if peak else None
            s["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9 if a.device == "cuda" else None
            s["settings"] = note
            result[label] = s
            mfu = f", MFU {s['mfu']:.1%}" if s["mfu"] is not None else ""
            mem = f", peak {s['peak_memory_gb']:.1f} GB" if s["peak_memory_gb"] else ""
            what = "test loss" if method == "sft" else "test accuracy"
            print(f"  {method:6} {label:15} {s['tokens_per_s']:>10,.0f} tok/s overall, {s['steady_tokens_per_s']:>10,.0f} steady{mfu}; "
                  f"padding efficiency {s['padding_efficiency']:.0%}; {what} {acc if acc is not None else float('nan'):.3f}{mem}  [{note}]",
                  flush=True)
            del meter
            import gc

            gc.collect()
        ratio = result["Arbiter recipe"]["steady_tokens_per_s"] / result["plain TRL"]["steady_tokens_per_s"]
        acc_gap = (result["Arbiter recipe"]["accuracy"] or 0) - (result["plain TRL"]["accuracy"] or 0)
        result["ratio"] = ratio
        figures[method] = result
        print(f"RATIO {method}: Arbiter recipe / plain TRL = {ratio:.2f}x steady-state tokens/s "
              f"(overall {result['Arbiter recipe']['tokens_per_s'] / result['plain TRL']['tokens_per_s']:.2f}x); "
              f"{'test loss' if method == 'sft' else 'accuracy'} difference {acc_gap:+.3f}", flush=True)
        a.lr = saved_lr
    if a.json:
        a.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(a).items()}, "device": device_name, "figures": figures}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
