"""Online RL throughput: our PPO, and RLOO / GRPO through TRL, on the same policy, reward model and
prompts. Where the time goes: generation, scoring (reward model), forward passes for log-probs and
values (PPO), and the update.

    python bench/rl_throughput.py --model-size tiny --device cpu
    python bench/rl_throughput.py --model-size 0.5b --device cuda            # + peak memory, vLLM if importable
    python bench/rl_throughput.py --model-size 0.5b --device cuda --methods ppo --json out.json

Self-contained: torch, transformers, peft, accelerate, trl, datasets; no Django, no database, no
downloads. The policy is a random-weight Llama built from a config (tiny: 2 layers, hidden 64;
0.5b: the Qwen2.5-0.5B shape, as bench/train_throughput.py builds it), the reward model the same
shape with a one-logit head. PPO runs as a run would (training/recipes/ppo.py build(): LoRA
policy with the adapter off as reference, critic = reward model + its own adapter, one GPU).

Figures:
- rollout tokens/s: response tokens generated per second of generation;
- training tokens/s: prompt+response tokens through forward+backward per second of update;
- wall time per update (the first update left out when there are several);
- peak GPU memory (torch.cuda.max_memory_allocated) of the PPO run: policy, reference, critic, RM.
Each section is guarded: a failure prints its error and the others still run.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the recipes, without Django
sys.path.insert(0, str(ROOT / "bench"))

SIZES = {
    "tiny": dict(hidden=64, intermediate=128, layers=2, heads=4, kv=2, vocab=2048, prompt=12),
    "0.5b": dict(hidden=896, intermediate=4864, layers=24, heads=14, kv=2, vocab=151936, prompt=96),
}


def build_models(size: str, root: Path, seed: int) -> tuple[Path, Path, int]:
    """Policy and reward model folders (safetensors + tokenizer); returns their paths and N."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification

    from train_throughput import llama_parts  # bench/ is on sys.path

    tokenizer, common = llama_parts(SIZES[size])
    torch.manual_seed(seed)
    policy = LlamaForCausalLM(LlamaConfig(**common))
    n = sum(p.numel() for p in policy.parameters())
    policy.save_pretrained(root / "policy", safe_serialization=True)
    tokenizer.save_pretrained(root / "policy")
    del policy
    rm = LlamaForSequenceClassification(LlamaConfig(**common, num_labels=1))
    rm.save_pretrained(root / "rm", safe_serialization=True)
    tokenizer.save_pretrained(root / "rm")
    del rm
    return root / "policy", root / "rm", n


def write_prompts(root: Path, size: str, n: int, seed: int) -> Path:
    rng = random.Random(seed)
    words = min(SIZES[size]["vocab"], 4096) - 5
    median = SIZES[size]["prompt"]
    (root / "snapshot" / "prompts").mkdir(parents=True, exist_ok=True)
    for split, count in (("train", n), ("test", 8)):
        with open(root / "snapshot" / "prompts" / f"{split}.jsonl", "w") as fh:
            for _ in range(count):
                k = max(2, min(int(rng.lognormvariate(math.log(median), 0.5)), 4 * median))
                fh.write(json.dumps({"prompt": " ".join(f"w{rng.randrange(words)}" for _ in range(k))}) + "\n")
    return root / "snapshot"


class Clock:
    """The Progress protocol, timing the gaps between steps."""

    def __init__(self):
        self.marks, self.points, self.lines = [], [], []

    def say(self, line):
        self.lines.append(line)

    def metrics(self, point):
        self.points.append(point)

    def steps(self, *, step, total=None):
        _sync()
        self.marks.append(time.perf_counter())

    def check(self):
        pass

    def should_stop(self):
        return False

    def per_update(self) -> float | None:
        gaps = [b - a for a, b in zip(self.marks, self.marks[1:])]
        gaps = gaps[1:] if len(gaps) > 1 else gaps
        return sum(gaps) / len(gaps) if gaps else None


def _sync():
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _context(root: Path, method: str, config: dict, *, policy: Path, rm: Path, snapshot: Path, progress, lora: bool):
    from training.recipes.catalog import TrainContext

    out = root / f"run-{method}"
    return TrainContext(run_id=0, method=method, config=config, use_lora=lora, snapshot_dir=snapshot, base_model_path=policy,
                        base_model_name="bench", out_dir=out / "out", checkpoint_dir=out / "checkpoints", work_dir=out / "work",
                        progress=progress, reward_model_path=rm)


def bench_ppo(a, root, paths) -> dict:
    import torch
    from training.recipes import ppo as recipe
    from training.rl import models as M
    from training.rl.ppo import PPOTrainer

    device = M.Processes().device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    clock = Clock()
    config = dict(per_device_train_batch_size=a.batch_size, num_mini_batches=a.mini_batches, ppo_epochs=a.ppo_epochs,
                  max_new_tokens=a.new_tokens, max_steps=a.updates, save_steps=10_000, reward_norm_samples=a.batch_size,
                  temperature=1.0, logging_steps=1, seed=a.seed, gradient_checkpointing=a.checkpointing)
    ctx = _context(root, "ppo", config, progress=clock, lora=not a.full, **paths)
    bf16_ok = device.type == "cuda" and torch.cuda.is_bf16_supported()
    cfg, pieces, _ = recipe.build(ctx, device=device, bf16_ok=bf16_ok)
    loaded = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
    trainer = PPOTrainer(cfg=cfg, prompts=M.load_prompts(paths["snapshot"], "train"), progress=clock, checkpoint_dir=ctx.checkpoint_dir,
                         device=device, **pieces)
    started = time.perf_counter()
    result = trainer.train()
    wall = time.perf_counter() - started
    t, tok = result["timings"], result["tokens"]
    out = {
        "updates": result["global_step"],
        "wall_s": round(wall, 2),
        "wall_per_update_s": clock.per_update(),
        "time_s": {k: round(v, 3) for k, v in t.items()},
        "time_share": {k: round(v / max(1e-9, sum(t.values())), 3) for k, v in t.items()},
        "rollout_tokens_per_s": tok["rollout"] / max(1e-9, t["generation"]),
        "training_tokens_per_s": tok["train"] / max(1e-9, t["update"]),
        "trainable_parameters": sum(p.numel() for m in (pieces["policy"], pieces["critic"]) for p in m.parameters() if p.requires_grad),
        "last": {k: v for k, v in result["history"][-1].items() if k in ("score", "kl", "response_length", "entropy")},
    }
    if device.type == "cuda":
        out["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        out["memory_after_loading_gib"] = round(loaded / 2**30, 2)
    return out


def bench_trl(a, root, paths, method: str, *, use_vllm: bool = False) -> dict:
    """RLOO or GRPO through TRL, timed from the outside: generate() and the reward calls are wrapped."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import TrainerCallback

    from training.rl import models as M

    if use_vllm:
        import os

        # vLLM's colocate mode runs inside torch.distributed, also for one process (TRL's docs).
        for key, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", "29555")):
            os.environ.setdefault(key, value)
    device = M.Processes().device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    trl = __import__("trl")
    args_cls = trl.RLOOConfig if method == "rloo" else trl.GRPOConfig
    trainer_cls = trl.RLOOTrainer if method == "rloo" else trl.GRPOTrainer
    tokenizer = M.load_tokenizer(paths["policy"])
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    policy = M.load_policy(paths["policy"], dtype=dtype if not a.full else torch.float32)
    rm_net, rm_tok = M.load_reward_model(paths["rm"], dtype=dtype)
    rm_net.requires_grad_(False).eval().to(device)
    scorer = M.RewardModel(rm_net, rm_tok, batch_size=64)
    timings = {"generation": 0.0, "scoring": 0.0}
    counts = {"generated": 0, "steps": 0}

    def reward(prompts, completions, **kw):
        _sync()
        t0 = time.perf_counter()
        out = scorer(list(prompts), list(completions)).cpu().tolist()
        timings["scoring"] += time.perf_counter() - t0
        return out

    reward.__name__ = "rm"
    args = args_cls(
        output_dir=str(root / f"run-{method}"), learning_rate=1e-5, max_steps=a.updates, per_device_train_batch_size=a.batch_size,
        num_generations=a.generations, max_completion_length=a.new_tokens, temperature=1.0, top_k=0, top_p=1.0, beta=0.04,
        bf16=device.type == "cuda", use_cpu=device.type == "cpu", report_to="none", save_strategy="no", logging_steps=1,
        disable_tqdm=True, gradient_checkpointing=a.checkpointing, use_vllm=use_vllm, vllm_mode="colocate",
        vllm_gpu_memory_utilization=0.3, seed=a.seed,
    )
    prompts = [{"prompt": p} for p in M.load_prompts(paths["snapshot"], "train")]
    peft_config = None if a.full else LoraConfig(task_type="CAUSAL_LM", r=16, lora_alpha=32, target_modules=M.lora_targets(policy))
    marks = []

    class Step(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            _sync()
            marks.append(time.perf_counter())

        def on_step_begin(self, args, state, control, **kw):
            if not marks:
                marks.append(time.perf_counter())

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "num_tokens" in logs:
                counts["num_tokens"] = logs["num_tokens"]

    trainer = trainer_cls(model=policy, reward_funcs=[reward], args=args, train_dataset=Dataset.from_list(prompts),
                          processing_class=tokenizer, peft_config=peft_config, callbacks=[Step()])
    if not use_vllm:
        model = trainer.accelerator.unwrap_model(trainer.model)
        generate = model.generate

        def timed_generate(*args_, **kwargs):
            _sync()
            t0 = time.perf_counter()
            out = generate(*args_, **kwargs)
            _sync()
            timings["generation"] += time.perf_counter() - t0
            prompt_len = (kwargs.get("input_ids") if kwargs.get("input_ids") is not None else args_[0]).shape[1]
            counts["generated"] += int((out[:, prompt_len:] != tokenizer.pad_token_id).sum())
            return out

        model.generate = timed_generate
    started = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - started
    gaps = [b - c for c, b in zip(marks, marks[1:])]
    steady = gaps[1:] if len(gaps) > 1 else gaps
    update = max(1e-9, wall - timings["generation"] - timings["scoring"]) if not use_vllm else None
    out = {
        "steps": len(gaps),
        "wall_s": round(wall, 2),
        "wall_per_update_s": sum(steady) / len(steady) if steady else None,
        "time_s": {"generation": round(timings["generation"], 3), "scoring": round(timings["scoring"], 3),
                   "update_and_logprobs": round(update, 3) if update else None},
        "rollout_tokens_per_s": counts["generated"] / timings["generation"] if timings["generation"] else None,
        "training_tokens_per_s": counts.get("num_tokens", 0) / update if update else None,
        "generation": "vllm" if use_vllm else "transformers",
    }
    if device.type == "cuda":
        out["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model-size", choices=sorted(SIZES), default="tiny")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--methods", default="ppo,rloo,grpo")
    p.add_argument("--prompts", type=int, default=None, help="train prompts (default: enough for the updates)")
    p.add_argument("--updates", type=int, default=None, help="updates per method (default: 6 tiny, 4 at 0.5b)")
    p.add_argument("--batch-size", type=int, default=None, help="rollout prompts (PPO) / completions (TRL) per update (default 16 tiny, 32 at 0.5b)")
    p.add_argument("--new-tokens", type=int, default=None, help="response length (default 24 tiny, 128 at 0.5b)")
    p.add_argument("--generations", type=int, default=4, help="responses per prompt (RLOO, GRPO)")
    p.add_argument("--mini-batches", type=int, default=2)
    p.add_argument("--ppo-epochs", type=int, default=2)
    p.add_argument("--full", action="store_true", help="full fine-tuning instead of LoRA")
    p.add_argument("--checkpointing", action="store_true", help="gradient checkpointing")
    p.add_argument("--no-vllm", action="store_true", help="skip the vLLM comparison")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path)
    a = p.parse_args(argv)

    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    if a.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device", file=sys.stderr)
        return 2
    big = a.model_size != "tiny"
    a.updates = a.updates or (4 if big else 6)
    a.batch_size = a.batch_size or (32 if big else 16)
    a.new_tokens = a.new_tokens or (128 if big else 24)
    prompts = a.prompts or a.batch_size * (a.updates + 2)
    figures: dict = {"model_size": a.model_size, "device": a.device, "torch": torch.__version__,
                     "gpu": torch.cuda.get_device_name(0) if a.device == "cuda" else None, "lora": not a.full,
                     "updates": a.updates, "batch_size": a.batch_size, "new_tokens": a.new_tokens, "methods": {}}
    if a.device == "cpu":
        figures["threads"] = torch.get_num_threads()
    with tempfile.TemporaryDirectory(prefix="rl-bench-") as tmp:
        root = Path(tmp)
        policy, rm, n = build_models(a.model_size, root, a.seed)
        figures["parameters"] = n
        paths = {"policy": policy, "rm": rm, "snapshot": write_prompts(root, a.model_size, prompts, a.seed)}
        runs = [(m, False) for m in a.methods.split(",") if m]
        if a.device == "cuda" and not a.no_vllm:
            try:
                import vllm  # noqa: F401

                runs.append(("grpo", True))
            except Exception as exc:  # noqa: BLE001 - optional
                figures["vllm"] = f"not importable: {type(exc).__name__}: {exc}"[:300]
        for method, vllm_run in runs:
            name = f"{method}+vllm" if vllm_run else method
            print(f"--- {name}", flush=True)
            try:
                figures["methods"][name] = bench_ppo(a, root, paths) if method == "ppo" else bench_trl(a, root, paths, method, use_vllm=vllm_run)
            except Exception as exc:  # noqa: BLE001 - every section on its own
                traceback.print_exc()
                figures["methods"][name] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
            print(json.dumps({name: figures["methods"][name]}, indent=1, default=str), flush=True)
            if a.device == "cuda":
                import gc

                gc.collect()
                torch.cuda.empty_cache()
        tg = figures["methods"].get("grpo", {}).get("rollout_tokens_per_s")
        vg = figures["methods"].get("grpo+vllm", {}).get("wall_per_update_s")
        if tg and vg and figures["methods"]["grpo"].get("wall_per_update_s"):
            figures["vllm_vs_transformers_wall_per_update"] = round(figures["methods"]["grpo"]["wall_per_update_s"] / vg, 2)
    print(json.dumps(figures, indent=1, default=str))
    if a.json:
        a.json.write_text(json.dumps(figures, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
