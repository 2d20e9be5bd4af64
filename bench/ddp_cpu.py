"""Two-process CPU DDP (gloo) against one process, through the same launch the gpu worker uses
(torchrun, training/runs/launcher.py) and the reward recipe's trainer, on the tiny test model.

    python bench/ddp_cpu.py                 # 40 steps, 8 pairs per process and step
    python bench/ddp_cpu.py --steps 80 --batch 16 --hidden 64
    python bench/ddp_cpu.py --gpu-check     # on a GPU machine: one pinned process via torchrun, and FSDP
                                            # through accelerate launch with training/accelerate/fsdp.yaml

Reports the median step time of each (steps after the first 5), the step-time ratio (2 processes
/ 1 process, same per-process batch) and the throughput ratio (pairs per second; 2 processes
train twice the pairs per step). Threads: the launcher's split, cores // processes each.
No Django, no database, no downloads.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WARMUP = 5
WORDS = "apples rivers engines planets music gardens the a it is was we you they thanks please kindly whatever stop go question about".split()


def prepare(folder: Path, *, hidden: int, pairs: int) -> None:
    from tests.tiny_models import tiny_causal_lm, train_tokenizer

    tokenizer = train_tokenizer([" ".join(WORDS)])
    model = tiny_causal_lm(tokenizer, hidden=hidden, layers=2, seed=0)
    model.save_pretrained(folder / "model", safe_serialization=True)
    tokenizer.save_pretrained(folder / "model")
    rng = random.Random(0)
    body = lambda: " ".join(rng.choice(WORDS[4:14]) for _ in range(rng.randint(2, 12)))  # noqa: E731
    with open(folder / "train.jsonl", "w") as fh:
        for _ in range(pairs):
            row = {"prompt": f"question about {rng.choice(WORDS[:4])}", "chosen": f" {body()} thanks {body()}", "rejected": f" {body()} stop {body()}"}
            fh.write(json.dumps(row) + "\n")


def worker(folder: Path, steps: int, batch: int, out: Path, device: str = "cpu") -> None:
    """One rank: the reward recipe's trainer, step end times recorded on rank 0."""
    from datasets import load_dataset
    from transformers import TrainerCallback, set_seed

    from training.recipes import reward
    from training.recipes.base import config_resolve
    from training.recipes.common import count_parameters, load_tokenizer

    set_seed(0)
    tokenizer = load_tokenizer(folder / "model")
    model = reward.model_load(path=folder / "model")
    cfg = config_resolve("reward", {"max_steps": steps, "per_device_train_batch_size": batch, "max_length": 64, "logging_steps": 1000,
                                    "save_steps": 100000}, use_lora=False, device_type=device, bf16_supported=device == "cuda",
                         n_params=count_parameters(model))
    train = load_dataset("json", data_files=str(folder / "train.jsonl"), split="train", cache_dir=str(folder / "cache"))
    times: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            times.append(time.perf_counter())

    trainer = reward.trainer_build(cfg=cfg, model=model, tokenizer=tokenizer, train_ds=train, use_lora=False,
                                   output_dir=folder / f"out-{os.environ.get('WORLD_SIZE', '1')}", device_type=device, callbacks=[Clock()])
    trainer.train()
    if int(os.environ.get("RANK", "0")) == 0:
        import torch

        wrapped = trainer.model_wrapped
        out.write_text(json.dumps({
            "times": [b - a for a, b in zip(times, times[1:])], "visible_gpus": torch.cuda.device_count(),
            "wrapped": type(wrapped).__name__, "data_parallel": isinstance(wrapped, torch.nn.DataParallel),
            "fsdp": bool(getattr(trainer, "is_fsdp_enabled", False)), "world_size": int(os.environ.get("WORLD_SIZE", "1")),
            "device": str(next(trainer.model.parameters()).device),
        }))


def launch(folder: Path, n: int, args, *, gpus: str = "", strategy: str = "ddp") -> dict:
    """The launcher's command line (training/runs/launcher.py: launch_command), for this script."""
    out = folder / f"report-{n}-{strategy}-{gpus or 'cpu'}.json"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": gpus, "TOKENIZERS_PARALLELISM": "false", "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    if not gpus:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // n))
    me = [str(Path(__file__).resolve()), "--worker", str(folder), "--steps", str(args.steps), "--batch", str(args.batch), "--out", str(out),
          "--device", "cuda" if gpus else "cpu"]
    if strategy == "ddp":
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc_per_node", str(n), *me]
    else:
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(ROOT / "training" / "accelerate" / f"{strategy}.yaml"),
               "--num_processes", str(n), "--num_machines", "1", "--machine_rank", "0", "--main_process_port", "29511", *me]
    subprocess.run(cmd, env=env, check=True, cwd=ROOT, stdout=subprocess.DEVNULL if not args.verbose else None)
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=8, help="pairs per process and step")
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    parser.add_argument("--gpu-check", action="store_true", help="one pinned process via torchrun, then FSDP via accelerate launch")
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.steps, args.batch, args.out, args.device)
    if args.gpu_check:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            prepare(folder, hidden=args.hidden, pairs=args.batch * 2 * args.steps)
            reports = {}
            for strategy in ("ddp", "fsdp"):
                try:
                    report = launch(folder, 1, args, gpus="0", strategy=strategy)
                    report["median_step_seconds"] = round(statistics.median(report.pop("times")[WARMUP:]), 5)
                except subprocess.CalledProcessError as exc:
                    report = {"failed": str(exc)}
                reports[strategy] = report
        print(json.dumps(reports, indent=2))
        return None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        prepare(folder, hidden=args.hidden, pairs=args.batch * 2 * args.steps)
        result = {}
        for n in (1, 2):
            steps = launch(folder, n, args)["times"][WARMUP:]
            result[n] = statistics.median(steps)
    ratio = result[2] / result[1]
    print(json.dumps({
        "cores": os.cpu_count(), "steps": args.steps, "batch_per_process": args.batch, "hidden": args.hidden,
        "step_seconds_1_process": round(result[1], 5), "step_seconds_2_processes": round(result[2], 5),
        "step_time_ratio_2_over_1": round(ratio, 3), "throughput_ratio_2_over_1": round(2 / ratio, 3),
    }, indent=2))


if __name__ == "__main__":
    main()
