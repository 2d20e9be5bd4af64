"""Tiny models and preference snapshots for the training tests.

A model here is a 2-layer Llama with a hidden size of 32-64 built from a config, and a word-level
tokenizer trained in milliseconds (both from tests/tiny_models.py), saved as safetensors and registered like any base model. The
data follow a rule a model can learn from a few hundred pairs: the preferred answer is polite
(it contains "thanks"), the rejected one is not."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from annotation.models import DatasetSnapshot
from training.models import ModelArtifact

TOPICS = "apples rivers engines planets music gardens clocks bridges oceans forests cities trains".split()
FILLER = "the a it is was we you they can will".split()
POLITE = ["thanks", "please", "kindly"]
RUDE = ["whatever", "stop", "go"]


def vocabulary() -> list[str]:
    words = TOPICS + FILLER + POLITE + RUDE + ["question", "about"]
    return list(dict.fromkeys(words))


def build_tokenizer():
    """The shared word-level tokenizer of tests/tiny_models.py, trained on our vocabulary."""
    from tests.tiny_models import train_tokenizer

    return train_tokenizer([" ".join(vocabulary())])


def build_tiny_model(folder: Path, *, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """A random-weight causal LM from a config (tests/tiny_models.py), saved as safetensors with
    its tokenizer. Llama, not Qwen2: for a qwen2 folder AutoTokenizer would swap our word-level
    tokenizer for Qwen2's BPE class."""
    from tests.tiny_models import tiny_causal_lm

    tokenizer = build_tokenizer()
    model = tiny_causal_lm(tokenizer, hidden=hidden, layers=layers, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def preference_rows(n: int, *, seed: int, start: int = 0, chat: bool = False, margin: bool = False) -> list[dict]:
    """Pairs where the chosen answer is polite and the rejected one rude; lengths vary."""
    rng = random.Random(seed)
    rows = []
    for _ in range(start, start + n):
        topic = rng.choice(TOPICS)
        prompt = f"question about {topic}"
        body = lambda: " ".join(rng.choice(FILLER) for _ in range(rng.randint(1, 6)))  # noqa: E731
        chosen = f"{body()} {rng.choice(POLITE)} {body()}"
        rejected = f"{body()} {rng.choice(RUDE)} {body()}"
        row = {"prompt": prompt, "chosen": " " + chosen, "rejected": " " + rejected}
        if chat:
            row = {
                "prompt": [{"role": "user", "content": prompt}],
                "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}],
            }
        if margin:
            row["margin"] = float(rng.choice([0.0, 1.0, 2.0]))
        rows.append(row)
    return rows


def write_snapshot_folder(folder: Path, train: list[dict], test: list[dict], fmt: str = "preference") -> Path:
    """The snapshot layout of DESIGN.md: manifest.json, README.md, <fmt>/{train,test}.jsonl."""
    (folder / fmt).mkdir(parents=True, exist_ok=True)
    for split, rows in (("train", train), ("test", test)):
        with open(folder / fmt / f"{split}.jsonl", "w") as fh:
            for row in rows:
                fh.write(json.dumps(row) + "\n")
    (folder / "manifest.json").write_text(json.dumps({"formats": [fmt], "counts": {fmt: {"train": len(train), "test": len(test)}}}))
    (folder / "README.md").write_text("# Test snapshot\n\nPolite answers preferred.\n")
    return folder


def sft_rows(n: int, *, seed: int, chat: bool = False) -> list[dict]:
    """Demonstrations: every answer is the polite one (the `sft` format: prompt, completion)."""
    rows = []
    for r in preference_rows(n, seed=seed, chat=chat):
        rows.append({"prompt": r["prompt"], "completion": r["chosen"]})
    return rows


def unpaired_rows(n: int, *, seed: int, desirable_share: float = 0.5, chat: bool = False) -> list[dict]:
    """Ratings (the `unpaired` format): polite answers desirable, rude ones undesirable."""
    rng = random.Random(seed + 1000)
    rows = []
    for r in preference_rows(n, seed=seed, chat=chat):
        good = rng.random() < desirable_share
        rows.append({"prompt": r["prompt"], "completion": r["chosen"] if good else r["rejected"], "label": good})
    return rows


@pytest.fixture
def tiny_model(db, settings):
    """make(name="tiny", hidden=32, layers=2) -> ModelArtifact (a causal LM base model)."""

    def make(name: str = "tiny", **kwargs) -> ModelArtifact:
        build_tiny_model(Path(settings.ARTIFACT_ROOT) / "models" / name, **kwargs)
        return ModelArtifact.objects.create(
            name=name, kind=ModelArtifact.Kind.CAUSAL_LM, source=ModelArtifact.Source.LOCAL, path=f"models/{name}"
        )

    return make


@pytest.fixture
def make_snapshot(db, settings):
    """make(project, train_rows, test_rows) -> a ready DatasetSnapshot with the files on disk."""

    def make(project, train: list[dict], test: list[dict], fmt: str = "preference") -> DatasetSnapshot:
        version = DatasetSnapshot.objects.filter(project=project).count() + 1
        rel = f"snapshots/{project.slug}/v{version}"
        folder = write_snapshot_folder(Path(settings.ARTIFACT_ROOT) / rel, train, test, fmt)
        manifest = json.loads((folder / "manifest.json").read_text())
        return DatasetSnapshot.objects.create(project=project, version=version, status=DatasetSnapshot.Status.READY, path=rel, progress=1.0,
                                              manifest=manifest)

    return make


@pytest.fixture
def snapshot(project):
    """A ready snapshot row of the demo project (no files: enough for pages and permissions)."""
    return DatasetSnapshot.objects.create(project=project, version=1, status=DatasetSnapshot.Status.READY, path="snapshots/demo/v1")


@pytest.fixture
def base_model(db):
    """A registered base model row (no weights: enough for pages and permissions)."""
    return ModelArtifact.objects.create(name="smol", kind=ModelArtifact.Kind.CAUSAL_LM, source=ModelArtifact.Source.GGUF, path="models/smol")
