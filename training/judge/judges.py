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
    """A causal LM that answers by the probability of each option, as a complete answer, after the prompt.

    Each option is scored as its tokens FOLLOWED BY THE END OF THE ASSISTANT'S TURN (the end marker
    the chat template writes after an answer: <|im_end|> for SmolLM2, the tokenizer's EOS where the
    template writes no special token), and the prompts (prompts.py) ask for the answer and nothing
    else. Why: scored by its own tokens alone, an option that is a prefix of another ("1" of "10" on
    a 1-10 scale, where "10" is two tokens) always gets at least the longer one's probability, since
    P("1") >= P("1") * P("0" | "1"): a judge that means 10 came out near 5.5. With the end marker no
    option's continuation is a prefix of another's, so "1" must be followed by the end of the turn
    to count, and a model that means "10" puts its mass on "0" there. We chose the end of turn over
    "every option is one token" because tokenizers split digits (SmolLM2: "10" = "1" "0"), so a 1-10
    Likert or rating scale could not be judged at all; and over a newline or a closing tag because
    the end of turn is a special token that never merges with the option's text and that every chat
    model was trained to write after a short answer.
    """

    is_reward_model = False

    def __init__(self, artifact: ModelArtifact, *, max_length: int = 2048):
        import torch
        from transformers import AutoModelForCausalLM

        from training.recipes.common import load_tokenizer

        device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        folder = artifact_path(artifact.path)
        if artifact.is_adapter:
            from peft import PeftModel

            if artifact.base_model is None:
                raise JudgeError(f"model: {artifact.name} is an adapter without a base model")
            base = AutoModelForCausalLM.from_pretrained(str(artifact_path(artifact.base_model.path)), dtype=dtype, use_safetensors=True)
            net = PeftModel.from_pretrained(base, str(folder), use_safetensors=True)
        else:
            net = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype, use_safetensors=True)
        self._ready(net=net.to(device).eval(), tokenizer=load_tokenizer(folder), device=device, max_length=max_length)

    def _ready(self, *, net, tokenizer, device: str, max_length: int) -> None:
        """Everything option_probs reads (a test stand-in sets these without loading a folder)."""
        self.net, self.tokenizer, self.device, self.max_length = net, tokenizer, device, max_length
        self._option_ids: dict[tuple, list[list[int]]] = {}
        self._end: int | None = None

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

    def end_id(self) -> int:
        """The token that ends the assistant's turn: the first thing the chat template writes after
        an answer when that is a special token (<|im_end|>, <|eot_id|>, <eos>), else the tokenizer's EOS."""
        if self._end is None:
            tok = self.tokenizer
            found = None
            try:
                asked = tok.apply_chat_template([{"role": "user", "content": "?"}], tokenize=False, add_generation_prompt=True)
                answered = tok.apply_chat_template([{"role": "user", "content": "?"}, {"role": "assistant", "content": "7"}], tokenize=False)
                if answered.startswith(asked) and answered[len(asked) :].lstrip().startswith("7"):
                    tail = answered[len(asked) :].lstrip()[1:]
                    ids = tok(tail, add_special_tokens=False)["input_ids"]
                    if ids and ids[0] in set(tok.all_special_ids):
                        found = ids[0]
            except Exception:  # noqa: BLE001 - a template that cannot render an answer: fall back to EOS
                found = None
            if found is None:
                found = tok.eos_token_id
            if found is None:
                raise JudgeError("model: its tokenizer has no end-of-turn or EOS token to mark the end of an answer; pick another judge model")
            self._end = int(found)
        return self._end

    def option_ids(self, options: list[str]) -> list[list[int]]:
        """Each option's tokens with the end marker after them, checked once per option list (the
        first item of a job): distinct, and the end marker inside none, so no continuation is a
        prefix of another."""
        key = tuple(options)
        if key not in self._option_ids:
            end = self.end_id()
            ids = [self.tokenizer(o, add_special_tokens=False)["input_ids"] for o in options]
            if any(not i for i in ids) or len({tuple(i) for i in ids}) != len(ids) or any(end in i for i in ids):
                raise JudgeError(f"model: its tokenizer cannot tell the answers {options} apart; pick another judge model")
            self._option_ids[key] = [i + [end] for i in ids]
        return self._option_ids[key]

    def option_probs(self, *, system: str, user: str, options: list[str]) -> list[float]:
        """P(option, then the end of the answer | prompt), normalised over the options: the summed
        log-probability of each option's tokens and the end marker. One forward pass over a batch
        of the options (right-padded); only the logits of the answer positions are kept (a full
        vocabulary at every position of every row would be gigabytes)."""
        import torch

        context = self.context_ids(system, user)
        opts = self.option_ids(options)
        rows = [context + o for o in opts]
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.end_id()
        ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], device=self.device)
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=self.device)
        start = len(context)  # the first answer token, predicted by the logits at start - 1
        keep = width - start + 1
        with torch.inference_mode():
            logits = self.net(input_ids=ids, attention_mask=mask, logits_to_keep=keep).logits[:, -keep:].float()
            logp = torch.log_softmax(logits, dim=-1)
        # Row r, answer token k sits at position start + k; the logits kept start at position start - 1.
        scores = [float(sum(logp[r, k, t] for k, t in enumerate(o))) for r, o in enumerate(opts)]
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
