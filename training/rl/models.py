"""What the online methods share: the prompt set of a snapshot, a reward model that scores texts,
the critic (per-token values from a sequence-classification model), and loading them.

No Django here: bench/rl_throughput.py uses it on a GPU machine without a database.
"""
from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import nn

from training.core.scorer import model_heads, reward_scores

# The classification heads of transformers models (decoder LMs: score; encoders: classifier).
HEADS = ("score", "classifier")


# --------------------------------------------------------------------------- prompt sets

def _jsonl_prompts(path: Path) -> list:
    out, seen = [], set()
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                prompt = json.loads(line)["prompt"]
            except (ValueError, KeyError, TypeError):
                raise ValueError(f"{path}:{number}: expected a JSON object with a 'prompt'") from None
            key = json.dumps(prompt, sort_keys=True)
            if key not in seen:
                seen.add(key)
                out.append(prompt)
    return out


def load_prompts(snapshot_dir: Path | str, split: str) -> list:
    """The snapshot's prompts of one split (text, or lists of chat messages), each once.

    The `prompts` format holds every item's prompt, judged or not; a snapshot built before that
    format existed still has its prompts in the preference (or sft) rows, which we fall back to
    (last, the `attributes` rows of a snapshot exported for a multi-objective reward model)."""
    folder = Path(snapshot_dir)
    for fmt in ("prompts", "preference", "sft", "unpaired", "attributes"):
        path = folder / fmt / f"{split}.jsonl"
        if path.exists():
            prompts = _jsonl_prompts(path)
            if prompts or fmt == "prompts":
                return prompts
    return []


# --------------------------------------------------------------------------- reward and value

def _transformers_model(net):
    return net.get_base_model() if hasattr(net, "get_base_model") else net


def _head(model) -> nn.Module:
    for name in HEADS:
        head = getattr(model, name, None)
        if head is not None:
            return head
    raise ValueError(f"{type(model).__name__} has no classification head ({' or '.join(HEADS)})")


class RewardModel:
    """Scores whole responses: one float per (prompt, response), higher is better. `adapter_off`:
    the network is the critic's too (LoRA), and the reward is what it says with the adapter off.
    `max_length` caps the model's own maximum positions. `weights`: how a multi-objective model's
    heads are combined (None: its saved defaults); checked against the model here, before any rollout."""

    def __init__(self, net, tokenizer, *, adapter_off: bool = False, batch_size: int = 16, max_length: int = 2048,
                 weights: dict[str, float] | None = None):
        from training.core.heads import weights_check

        self.net, self.tokenizer, self.adapter_off = net, tokenizer, adapter_off
        self.batch_size, self.max_length, self.weights = batch_size, max_length, weights
        weights_check(model_heads(net), weights, field="attribute_weights")

    def __call__(self, prompts: list, responses: list[str]) -> torch.Tensor:
        # The one scorer (training/core/scorer.py): per-row special tokens, cut from the prompt's left.
        off = self.net.disable_adapter() if self.adapter_off else nullcontext()
        with off:
            return reward_scores(self.net, self.tokenizer, prompts, responses, batch_size=self.batch_size, cap=self.max_length,
                                 weights=self.weights)


class ValueModel(nn.Module):
    """The critic: a sequence-classification model whose head is applied at every position, so
    it gives V(s_t) for each token instead of one score for the sequence (as InstructGPT's value
    function, initialised from the reward model)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, input_ids, attention_mask, position_ids=None):
        model = _transformers_model(self.net)
        backbone = getattr(model, model.base_model_prefix)
        hidden = backbone(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids).last_hidden_state
        return _head(model)(hidden).squeeze(-1).float()


# --------------------------------------------------------------------------- processes

class Processes:
    """Which process this is of a run launched by torchrun / accelerate launch (one process
    otherwise), and its device. Read from torch.distributed, which a launcher initialises (we
    initialise it when the environment says WORLD_SIZE > 1 and nobody has): accelerate's
    PartialState reports a single process for multi-process CPU runs."""

    def __init__(self):
        import os

        dist = torch.distributed
        if not dist.is_initialized() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
        self.distributed = dist.is_initialized()
        self.rank = dist.get_rank() if self.distributed else 0
        self.world = dist.get_world_size() if self.distributed else 1
        if torch.cuda.is_available():
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            self.device = torch.device("cuda", local)
        else:
            self.device = torch.device("cpu")
        self.is_main = self.rank == 0

    def barrier(self) -> None:
        if self.distributed:
            torch.distributed.barrier()


# --------------------------------------------------------------------------- loading

def lora_targets(model, skip: tuple[str, ...] = ()) -> list[str]:
    """Every linear layer of the backbone; never the output or classification head."""
    names = set()
    for name, module in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if isinstance(module, nn.Linear) and leaf not in {"lm_head", *HEADS, *skip} and name.split(".")[0] not in HEADS:
            names.add(leaf)
    return sorted(names)


def with_lora(model, *, task_type: str, r: int, alpha: int, dropout: float, modules_to_save=None):
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(task_type=task_type, r=r, lora_alpha=alpha, lora_dropout=dropout,
                        target_modules=lora_targets(model), modules_to_save=modules_to_save)
    return get_peft_model(model, config)


def load_tokenizer(path: Path | str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_policy(path: Path | str, *, dtype=None):
    """A causal LM; a trained policy saved as an adapter is merged into its base first, so that
    this run's own adapter (and "adapter off" as the reference) sits on top of it."""
    from transformers import AutoModelForCausalLM

    path = Path(path)
    if (path / "adapter_config.json").exists():
        from peft import PeftModel

        base_path = json.loads((path / "adapter_config.json").read_text())["base_model_name_or_path"]
        base = AutoModelForCausalLM.from_pretrained(base_path, dtype=dtype, use_safetensors=True)
        return PeftModel.from_pretrained(base, str(path)).merge_and_unload()
    return AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype, use_safetensors=True)


def load_reward_model(path: Path | str, *, is_adapter: bool = False, dtype=None, base_path: Path | str | None = None):
    """A registered reward model as one plain network: an adapter is merged into its base
    (`base_path`, or the one named in the adapter's config), so a critic's adapter can go on top."""
    from transformers import AutoModelForSequenceClassification

    from training.core.heads import heads_attach, num_labels

    path = Path(path)
    heads = num_labels(path)  # one per attribute for a multi-objective model (arbiter_heads.json)
    if is_adapter or (path / "adapter_config.json").exists():
        from peft import PeftModel

        base_path = base_path or json.loads((path / "adapter_config.json").read_text())["base_model_name_or_path"]
        base = AutoModelForSequenceClassification.from_pretrained(base_path, num_labels=heads, dtype=dtype, use_safetensors=True)
        net = PeftModel.from_pretrained(base, str(path)).merge_and_unload()
    else:
        net = AutoModelForSequenceClassification.from_pretrained(str(path), num_labels=heads, dtype=dtype, use_safetensors=True)
    heads_attach(net, path)
    tokenizer = load_tokenizer(path)
    net.config.pad_token_id = tokenizer.pad_token_id  # the head reads the last non-pad token
    return net, tokenizer


def critic_from_policy(path: Path | str, *, pad_token_id: int, dtype=None):
    """A critic with the policy's backbone and a zero-initialised head (V = 0 at the start)."""
    from transformers import AutoModelForSequenceClassification

    net = AutoModelForSequenceClassification.from_pretrained(str(path), num_labels=1, dtype=dtype, use_safetensors=True)
    net.config.pad_token_id = pad_token_id
    with torch.no_grad():
        for p in _head(net).parameters():
            p.zero_()
    return net


def same_vocabulary(a, b) -> bool:
    return a.get_vocab() == b.get_vocab()
