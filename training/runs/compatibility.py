"""Settings that cannot work together, refused when a run is created (form, API, admin: all go
through training.runs.services.run_create) instead of failing on the worker after the run has
waited in the queue (issue 21: PPO with a critic from a MiniLM reward model failed after 20
minutes). Each refusal is a ConfigError that names the setting to change and how.

Only small files of the model folders are read (tokenizer.json, vocab files, tokenizer_config.json),
never the weights, and nothing here imports torch or transformers: the web process calls it.
Where a folder holds no tokenizer file this module understands, it says nothing and the worker's
own check (training.rl.models.same_vocabulary) still stands.
"""
from __future__ import annotations

import json
from pathlib import Path

from training.recipes.base import ConfigError
from training.registry.models import ModelArtifact
from training.registry.services import model_path

_SPECIALS = ("bos_token", "eos_token", "pad_token", "unk_token")


def _json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _vocab_from_tokenizer_json(data: dict) -> dict[str, int] | None:
    model = data.get("model") if isinstance(data, dict) else None
    vocab = model.get("vocab") if isinstance(model, dict) else None
    if isinstance(vocab, dict):  # BPE, WordPiece, WordLevel
        out = {str(k): v for k, v in vocab.items() if isinstance(v, int)}
    elif isinstance(vocab, list):  # Unigram: [[piece, score], ...], the id is the position
        out = {str(entry[0]): i for i, entry in enumerate(vocab) if isinstance(entry, list) and entry}
    else:
        return None
    for added in data.get("added_tokens") or []:  # get_vocab() includes them, so the worker's check does too
        if isinstance(added, dict) and isinstance(added.get("content"), str) and isinstance(added.get("id"), int):
            out[added["content"]] = added["id"]
    return out


def tokenizer_signature(folder: Path) -> dict | None:
    """{"vocab": {token: id}, "class": str | None, "special": {name: token}} from the tokenizer files
    of a model folder; None when it has none that can be read."""
    folder = Path(folder)
    vocab = None
    data = _json(folder / "tokenizer.json")
    if data is not None:
        vocab = _vocab_from_tokenizer_json(data)
    if vocab is None and (folder / "vocab.json").is_file():  # GPT-2 style slow tokenizers
        raw = _json(folder / "vocab.json")
        vocab = {str(k): v for k, v in raw.items() if isinstance(v, int)} if isinstance(raw, dict) else None
    if vocab is None and (folder / "vocab.txt").is_file():  # BERT style: one token per line, the id is the line
        try:
            vocab = {line: i for i, line in enumerate((folder / "vocab.txt").read_text(encoding="utf-8").splitlines())}
        except OSError:
            vocab = None
    if vocab is None:
        return None
    config = _json(folder / "tokenizer_config.json") or {}
    specials = {}
    for name in _SPECIALS:
        value = config.get(name) if isinstance(config, dict) else None
        if isinstance(value, dict):
            value = value.get("content")
        if isinstance(value, str):
            specials[name] = value
    return {"vocab": vocab, "class": config.get("tokenizer_class") if isinstance(config, dict) else None, "special": specials}


def artifact_tokenizer(artifact: ModelArtifact) -> dict | None:
    """The tokenizer signature of a registered model: its own folder, else (an adapter saved
    without one) its base model's."""
    for candidate in (artifact, artifact.base_model):
        if candidate is None or not candidate.path:
            continue
        try:
            signature = tokenizer_signature(model_path(candidate))
        except (OSError, ValueError):
            signature = None
        if signature is not None:
            return signature
    return None


def tokenizer_difference(a: dict, b: dict) -> str | None:
    """How two signatures differ in a way that changes token ids, in words; None when they agree."""
    if a["vocab"] == b["vocab"]:
        return None
    parts = []
    if a["class"] != b["class"]:
        parts.append(f"{a['class'] or 'unknown class'} against {b['class'] or 'unknown class'}")
    parts.append(f"{len(a['vocab'])} tokens against {len(b['vocab'])}")
    shared = set(a["special"]) & set(b["special"])
    diff = [f"{n} {a['special'][n]!r} against {b['special'][n]!r}" for n in sorted(shared) if a["special"][n] != b["special"][n]]
    return "; ".join(parts + diff[:2])


def snapshot_attributes(snapshot) -> list[str] | None:
    """The attribute columns of a snapshot's `attributes` rows (a column with its `_count` beside
    it), from the first row: every row has every scale question. None when there is no such file."""
    from training.core.paths import artifact_path

    try:
        with open(artifact_path(snapshot.path) / "attributes" / "train.jsonl", encoding="utf-8") as fh:
            row = json.loads(fh.readline())
    except (OSError, ValueError):
        return None
    return [k for k in row if f"{k}_count" in row] if isinstance(row, dict) else None


def run_check_compatible(*, method: str, values: dict, base_model: ModelArtifact, reward_model: ModelArtifact | None,
                         num_processes: int, snapshot=None) -> None:
    """Refuse, naming the fix, a run whose settings and models cannot work together."""
    if values.get("default_weights") and snapshot is not None:
        # multi_reward: a weight for an attribute the snapshot lacks is refused before the run waits in the queue
        # (the worker checks again, for a file it could not read here).
        from training.core.heads import weights_parse

        attributes = snapshot_attributes(snapshot)
        unknown = sorted(set(weights_parse(values["default_weights"], field="default_weights") or {}) - set(attributes or []))
        if attributes is not None and unknown:
            raise ConfigError(f"default_weights.{unknown[0]}: the snapshot has no attribute {unknown[0]!r} (it has {', '.join(attributes)})")
    if values.get("critic_init") == "reward_model" and reward_model is not None:
        # The critic gives a value per policy token, so it must read the policy's token ids.
        policy_tok, rm_tok = artifact_tokenizer(base_model), artifact_tokenizer(reward_model)
        difference = tokenizer_difference(policy_tok, rm_tok) if policy_tok and rm_tok else None
        if difference:
            raise ConfigError(
                f"critic_init: the reward model {reward_model.name} uses another tokenizer than the base model {base_model.name} "
                f"({difference}), so a critic started from it cannot value the policy's tokens; set critic_init to policy, "
                f"or choose a reward model trained from {base_model.name}"
            )
    if values.get("attribute_weights") and reward_model is not None:
        # Names checked against the reward model's heads (its arbiter_heads.json) before the run queues.
        from training.core.heads import WeightsError, heads_read, weights_check, weights_parse

        try:
            weights_check(heads_read(model_path(reward_model)), weights_parse(values["attribute_weights"], field="attribute_weights"),
                          field="attribute_weights", model=f"the reward model {reward_model.name}")
        except (WeightsError, ValueError) as exc:
            raise ConfigError(str(exc)) from None
    if values.get("use_liger_kernel") is True and base_model.kind == ModelArtifact.Kind.ENCODER:
        # Liger patches decoder LMs (Llama, Qwen2, Mistral, Gemma, ...); for a BERT-style encoder it
        # logs that it has no kernels and the run goes on without them.
        raise ConfigError(f"use_liger_kernel: Liger has no kernels for an encoder such as {base_model.name}; "
                          f"leave it on auto or turn it off")
    generations = values.get("num_generations")
    if isinstance(generations, int) and generations > 0 and "per_device_train_batch_size" in values:
        # TRL checks this when it builds its config, on the worker: each generation batch must hold whole groups.
        batch = values["per_device_train_batch_size"] * num_processes * values.get("gradient_accumulation_steps", 1)
        if batch % generations:
            raise ConfigError(
                f"per_device_train_batch_size: {values['per_device_train_batch_size']} responses × {num_processes} process(es) × "
                f"{values.get('gradient_accumulation_steps', 1)} accumulation step(s) = {batch}, not a multiple of num_generations "
                f"({generations}); make it a multiple, or change num_generations"
            )
