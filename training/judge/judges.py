"""The model side of the judge: probabilities of answer options from a causal LM, and scores
from a reward model. torch/transformers are imported inside the functions only (the web process
imports training.judge.* for the forms and never loads torch)."""
from __future__ import annotations

import math

from training.registry.models import ModelArtifact
from training.core.paths import artifact_path

LM_KINDS = {ModelArtifact.Kind.CAUSAL_LM, ModelArtifact.Kind.POLICY}
RM_KINDS = {ModelArtifact.Kind.REWARD_MODEL}
JUDGE_KINDS = LM_KINDS | RM_KINDS


class JudgeError(ValueError):
    pass


class LMJudge:
    """A causal LM that answers by the probability of each option's tokens after the prompt."""

    is_reward_model = False

    def __init__(self, artifact: ModelArtifact, *, max_length: int = 2048):
        import torch
        from transformers import AutoModelForCausalLM

        from training.recipes.common import load_tokenizer

        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        folder = artifact_path(artifact.path)
        if artifact.is_adapter:
            from peft import PeftModel

            if artifact.base_model is None:
                raise JudgeError(f"model: {artifact.name} is an adapter without a base model")
            base = AutoModelForCausalLM.from_pretrained(str(artifact_path(artifact.base_model.path)), dtype=dtype, use_safetensors=True)
            net = PeftModel.from_pretrained(base, str(folder), use_safetensors=True)
        else:
            net = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype, use_safetensors=True)
        self.net = net.to(self.device).eval()
        self.tokenizer = load_tokenizer(folder)
        self.max_length = max_length
        self._option_ids: dict[tuple, list[list[int]]] = {}

    def context_ids(self, system: str, user: str) -> list[int]:
        """The chat as the model expects it, up to the start of the assistant's answer."""
        tok = self.tokenizer
        try:
            text = tok.apply_chat_template([{"role": "system", "content": system}, {"role": "user", "content": user}], tokenize=False, add_generation_prompt=True)
        except Exception:  # noqa: BLE001 - some templates refuse a system turn: fold it into the user's
            text = tok.apply_chat_template([{"role": "user", "content": system + "\n\n" + user}], tokenize=False, add_generation_prompt=True)
        ids = tok(text, add_special_tokens=False)["input_ids"]
        # Too long: keep the end, where the responses and the question are.
        return ids[-self.max_length :]

    def option_ids(self, options: list[str]) -> list[list[int]]:
        key = tuple(options)
        if key not in self._option_ids:
            ids = [self.tokenizer(o, add_special_tokens=False)["input_ids"] for o in options]
            if any(not i for i in ids) or len({tuple(i) for i in ids}) != len(ids):
                raise JudgeError(f"model: its tokenizer cannot tell the answers {options} apart; pick another judge model")
            self._option_ids[key] = ids
        return self._option_ids[key]

    def option_probs(self, *, system: str, user: str, options: list[str]) -> list[float]:
        """P(option | prompt), normalised over the options. One forward pass when every option is
        one token (A/B, 1..9); otherwise the summed log-probability of each option's tokens."""
        import torch

        context = self.context_ids(system, user)
        opts = self.option_ids(options)
        with torch.inference_mode():
            if all(len(o) == 1 for o in opts):
                logits = self.net(input_ids=torch.tensor([context], device=self.device)).logits[0, -1].float()
                logp = torch.log_softmax(logits, dim=-1)
                scores = [float(logp[o[0]]) for o in opts]
            else:
                scores = []
                for o in opts:
                    ids = torch.tensor([context + o], device=self.device)
                    logp = torch.log_softmax(self.net(input_ids=ids).logits[0].float(), dim=-1)
                    start = len(context)
                    scores.append(float(sum(logp[start - 1 + k, t] for k, t in enumerate(o))))
        top = max(scores)
        weights = [math.exp(s - top) for s in scores]
        total = sum(weights)
        return [w / total for w in weights]


class RMJudge:
    """A reward model: one score per response; pairs by Bradley–Terry, no screen order involved."""

    is_reward_model = True

    def __init__(self, artifact: ModelArtifact):
        self.artifact = artifact

    def scores(self, *, prompt, responses: list[str]) -> list[float]:
        from training.registry.scoring import score

        return score(model=self.artifact, prompt=prompt, responses=responses)


def judge_load(artifact: ModelArtifact, *, max_length: int = 2048):
    if artifact.kind in LM_KINDS:
        return LMJudge(artifact, max_length=max_length)
    if artifact.kind in RM_KINDS:
        return RMJudge(artifact)
    raise JudgeError(f"model: {artifact.name} is a {artifact.get_kind_display().lower()}; a judge is a causal LM, a policy or a reward model")
