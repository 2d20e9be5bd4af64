"""A snapshot trains with TRL as it is: load_dataset on its files, then a few CPU steps of
RewardTrainer and DPOTrainer (preference), KTOTrainer (unpaired) and SFTTrainer (sft) on a tiny
model whose tokenizer is trained on the snapshot's own text."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from annotation.exports import snapshot_create
from annotation.exports.build import snapshot_build
from annotation.kinds import Kind
from annotation.models import Judgment
from tests.tiny_models import cpu_args, snapshot_texts, tiny_causal_lm, tiny_reward_model, train_tokenizer

pytestmark = pytest.mark.slow


def _snapshot(make_project, add_items, member, *, chat: bool, kind=Kind.BINARY):
    project = make_project(kind)
    for i, item in enumerate(add_items(project, 16, chat=chat)):
        value = {"winner": i % 2} if kind == Kind.BINARY else {"winner": i % 2, "strength": 1 + i % 3}
        Judgment.objects.create(project=project, item=item, rater=member, kind=kind, value=value)
    snapshot = snapshot_create(project=project, options={"test_share": 0.25}, enqueue=False)
    snapshot = snapshot_build(snapshot_id=snapshot.id)
    assert snapshot.status == "ready", snapshot.error
    return Path(snapshot.path)


def _load(folder: Path, fmt: str, ext: str = "jsonl"):
    from datasets import load_dataset

    kind = "json" if ext == "jsonl" else "parquet"
    files = {split: str(folder / fmt / f"{split}.{ext}") for split in ("train", "test")}
    return load_dataset(kind, data_files=files)


def _trained(trainer) -> float:
    result = trainer.train()
    assert result.global_step == 2
    assert math.isfinite(result.training_loss)
    return result.training_loss


def test_it_loads_every_format_as_jsonl_and_parquet_alike(make_project, add_items, member):
    folder = _snapshot(make_project, add_items, member, chat=True)
    for fmt, columns in {"preference": {"prompt", "chosen", "rejected"}, "unpaired": {"prompt", "completion", "label"},
                         "sft": {"prompt", "completion", "source"}}.items():
        jsonl, parquet = _load(folder, fmt), _load(folder, fmt, "parquet")
        assert set(jsonl["train"].column_names) == columns
        assert jsonl["train"].to_list() == parquet["train"].to_list()
        assert jsonl["train"].num_rows + jsonl["test"].num_rows > 0
    judgments = _load(folder, "judgments")
    assert judgments["train"].num_rows + judgments["test"].num_rows == 16


def test_it_trains_a_reward_model_with_margins_and_dpo_on_the_preference_files(make_project, add_items, member, tmp_path):
    from trl import DPOConfig, DPOTrainer, RewardConfig, RewardTrainer

    folder = _snapshot(make_project, add_items, member, chat=False, kind=Kind.LIKERT)
    data = _load(folder, "preference")
    assert "margin" in data["train"].column_names
    tokenizer = train_tokenizer(snapshot_texts(folder))
    _trained(RewardTrainer(model=tiny_reward_model(tokenizer), args=cpu_args(RewardConfig, tmp_path / "rm", max_length=64),
                           train_dataset=data["train"], processing_class=tokenizer))

    chat = _load(_snapshot(make_project, add_items, member, chat=True), "preference")
    tokenizer = train_tokenizer(t for split in chat.values() for row in split for m in row["prompt"] + row["chosen"] + row["rejected"] for t in [m["content"]])
    # A model object has no hub name to reload a reference from: pass the frozen copy explicitly.
    _trained(DPOTrainer(model=tiny_causal_lm(tokenizer), ref_model=tiny_causal_lm(tokenizer), args=cpu_args(DPOConfig, tmp_path / "dpo", max_length=64),
                        train_dataset=chat["train"], processing_class=tokenizer))


def test_it_trains_kto_on_the_unpaired_files(make_project, add_items, member, tmp_path):
    from trl import KTOConfig, KTOTrainer

    folder = _snapshot(make_project, add_items, member, chat=True)
    data = _load(folder, "unpaired")
    assert set(data["train"]["label"]) == {True, False}
    tokenizer = train_tokenizer(snapshot_texts(folder))
    _trained(KTOTrainer(model=tiny_causal_lm(tokenizer), ref_model=tiny_causal_lm(tokenizer), args=cpu_args(KTOConfig, tmp_path / "kto", per_device_train_batch_size=4, max_length=64),
                        train_dataset=data["train"], processing_class=tokenizer))


def test_it_trains_sft_on_the_sft_files(make_project, add_items, member, tmp_path):
    from trl import SFTConfig, SFTTrainer

    for chat in (False, True):
        folder = _snapshot(make_project, add_items, member, chat=chat)
        data = _load(folder, "sft")
        tokenizer = train_tokenizer(snapshot_texts(folder))
        _trained(SFTTrainer(model=tiny_causal_lm(tokenizer), args=cpu_args(SFTConfig, tmp_path / f"sft{chat}", max_length=64),
                            train_dataset=data["train"], processing_class=tokenizer))
