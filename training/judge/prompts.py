"""Prompt templates of the AI judge.

A template is a system part (the task, the project's instructions, its principles) and an item
part (the prompt and the responses as the judge sees them on "screen": A first, B second). The
judge answers with one option ("A"/"B", a scale point, a score) and nothing else; the probability
of each option as a complete answer (its tokens, then the end of the assistant's turn: see
judges.LMJudge) is read from the model: it is never asked to write free text. Every question says
"and nothing else" because that end marker is part of what is scored: "1" counts only as an answer
that stops there, not as the start of "10".

The template key ("name@sha256[:10]" of the system part and the item layout) goes on every AI
judgment (Judgment.ai_template), so agreement is measured per judge *and* per template, and
editing the instructions or the principles makes a new key instead of mixing two judges.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from annotation.kinds import Kind

# Long prompts and responses are cut (the judge reads the end of a conversation and the start of
# each response): enough for the judge to decide, and a bound on CPU time per item.
PROMPT_CHARS = 1500
RESPONSE_CHARS = 1200

SYSTEM = (
    "You are a careful annotator of AI assistant responses. You follow the project's instructions"
    " and principles, and you are not swayed by the order in which responses are shown or by their length."
)

ITEM_PAIR = (
    "[Conversation]\n{prompt}\n\n[Response A]\n{a}\n\n[Response B]\n{b}\n\n"
    "Which response is better? Answer with a single letter, A or B, and nothing else."
)
ITEM_LIKERT = (
    "[Conversation]\n{prompt}\n\n[Response A]\n{a}\n\n[Response B]\n{b}\n\n"
    "Compare the responses on a scale from 1 to {points}: 1 means Response A is much better, {points}"
    " means Response B is much better{middle}. Answer with a single number and nothing else."
)
ITEM_RATING = (
    "[Conversation]\n{prompt}\n\n[Response]\n{a}\n\n"
    "Rate the response from {low} (worst) to {high} (best). Answer with a single number and nothing else."
)

TEMPLATES = {"default": {"pair": ITEM_PAIR, "likert": ITEM_LIKERT, "rating": ITEM_RATING}}


class TemplateError(ValueError):
    pass


def principles_list(text: str) -> list[str]:
    """One principle per non-empty line; leading bullets ("-", "*", "1.") are dropped."""
    out = []
    for line in (text or "").splitlines():
        line = line.strip().lstrip("-*•").strip()
        if line[:3].rstrip(".)").isdigit() and line[:3].rstrip().endswith((".", ")")):
            line = line.split(maxsplit=1)[1] if " " in line else ""
        if line:
            out.append(line)
    return out


def system_text(project) -> str:
    parts = [SYSTEM]
    if (project.instructions or "").strip():
        parts.append("Instructions for annotators of this project:\n" + project.instructions.strip())
    principles = principles_list(getattr(project, "principles", ""))
    if principles:
        parts.append("Principles (a response that follows them better is better):\n" + "\n".join(f"{i}. {p}" for i, p in enumerate(principles, 1)))
    return "\n\n".join(parts)


@dataclass(frozen=True)
class JudgeTemplate:
    name: str
    system: str
    items: dict

    @property
    def key(self) -> str:
        digest = hashlib.sha256(repr((self.system, sorted(self.items.items()))).encode()).hexdigest()[:10]
        return f"{self.name}@{digest}"

    @property
    def text(self) -> str:
        """What a person reads to know what the judge was asked (stored on the job)."""
        return self.system + "\n\n---\n\n" + "\n\n---\n\n".join(self.items[k] for k in sorted(self.items))


def template_for(project, name: str = "default") -> JudgeTemplate:
    if name not in TEMPLATES:
        raise TemplateError(f"template: unknown template {name!r} (known: {', '.join(TEMPLATES)})")
    return JudgeTemplate(name=name, system=system_text(project), items=dict(TEMPLATES[name]))


def prompt_text(prompt) -> str:
    """An item's prompt as the judge reads it: text, or a chat transcript."""
    if isinstance(prompt, list):
        text = "\n".join(f"{m.get('role', 'user')}: {m.get('content', '')}" for m in prompt if isinstance(m, dict))
    else:
        text = str(prompt)
    return text if len(text) <= PROMPT_CHARS else "…" + text[-PROMPT_CHARS:]


def _response(text: str) -> str:
    return text if len(text) <= RESPONSE_CHARS else text[:RESPONSE_CHARS] + "…"


def pair_message(template: JudgeTemplate, prompt, first: str, second: str) -> str:
    return template.items["pair"].format(prompt=prompt_text(prompt), a=_response(first), b=_response(second))


def likert_message(template: JudgeTemplate, prompt, first: str, second: str, *, points: int) -> str:
    middle = f", {points // 2 + 1} means they are equally good" if points % 2 else ""
    return template.items["likert"].format(prompt=prompt_text(prompt), a=_response(first), b=_response(second), points=points, middle=middle)


def rating_message(template: JudgeTemplate, prompt, response: str, *, low: int, high: int) -> str:
    return template.items["rating"].format(prompt=prompt_text(prompt), a=_response(response), low=low, high=high)


PAIR_OPTIONS = ["A", "B"]


def likert_options(points: int) -> list[str]:
    return [str(k) for k in range(1, points + 1)]


def rating_options(low: int, high: int) -> list[str]:
    return [str(s) for s in range(low, high + 1)]


KINDS = (Kind.BINARY, Kind.LIKERT, Kind.RANKING, Kind.RATING)
