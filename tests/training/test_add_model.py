"""manage.py add_model: registers base models, idempotent by name, with errors in words."""
from __future__ import annotations

import json
from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from safetensors.numpy import save_file

from training.models import ModelArtifact

pytestmark = pytest.mark.django_db


def add_model(*args) -> str:
    out = StringIO()
    call_command("add_model", *args, stdout=out)
    return out.getvalue()


def test_it_registers_minilm_once(settings):
    first = add_model("--minilm")
    assert "all-minilm-l6-v2: registered (Encoder" in first
    again = add_model("--minilm")
    assert "all-minilm-l6-v2: already registered" in again
    artifact = ModelArtifact.objects.get()
    assert (settings.ARTIFACT_ROOT / artifact.path / "model.safetensors").is_file()


def test_it_registers_a_local_folder_with_a_kind(tmp_path):
    folder = tmp_path / "rm"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architectures": ["Qwen2ForCausalLM"]}))
    save_file({"w": np.ones((2, 2), dtype=np.float32)}, str(folder / "model.safetensors"))
    assert "my-rm: registered (Reward model, Local folder)" in add_model("--path", str(folder), "--name", "my-rm", "--kind", "reward_model")
    assert "my-lm: registered (Causal language model" in add_model("--path", str(folder), "--name", "my-lm")
    assert ModelArtifact.objects.count() == 2


def test_it_refuses_pickled_weights_and_says_why(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(CommandError, match=r"pytorch_model\.bin: pickled weights are never loaded"):
        add_model("--path", str(folder), "--name", "old")
    assert not ModelArtifact.objects.exists()


def test_it_needs_exactly_one_source_and_a_name(tmp_path):
    with pytest.raises(CommandError, match="one of the arguments"):
        add_model()
    with pytest.raises(CommandError, match="not allowed with"):
        add_model("--minilm", "--smollm2")
    with pytest.raises(CommandError, match="--path needs --name"):
        add_model("--path", str(tmp_path))
    fake = tmp_path / "x.gguf"
    fake.write_text("not gguf")
    with pytest.raises(CommandError, match="not a GGUF file"):
        add_model("--gguf", str(fake), "--name", "x")


def test_it_explains_an_unreachable_hub():
    # Offline either way here: HF_HUB_OFFLINE set (scripts/test.sh) or no network at all.
    with pytest.raises(CommandError, match="cannot (reach the Hugging Face hub to )?download HuggingFaceTB/SmolLM2-135M.*--path"):
        add_model("--hub", "HuggingFaceTB/SmolLM2-135M")
    assert not ModelArtifact.objects.exists()
