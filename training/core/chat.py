"""How a model sees a prompt: one rule for training, rollouts, generation, evaluation and scoring.

A prompt is text or a list of chat messages. A text prompt is **one user turn** for a model whose
tokenizer has a chat template of its own (an instruct model such as SmolLM2-Instruct): given the
bare text, such a model mostly ends its answer at once or rambles on, because it never saw text
without its turn markers. A model without one (a base LM, an encoder like MiniLM) continues the
text as it is. Every place that renders a prompt for a model goes through `as_chat`, so that a
policy is trained, sampled and evaluated on the same rendering, and a reward model scores pairs
the way it was trained on them.

Models without a template get PLAIN_CHAT_TEMPLATE at load time (so that conversational snapshots
still tokenize); that one does not count as their own. No torch, no Django here.
"""
from __future__ import annotations

PLAIN_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)

# The columns of the snapshot formats that hold answers (preference, sft, unpaired).
ANSWER_COLUMNS = ("chosen", "rejected", "completion")


def is_conversational(value) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], dict) and "role" in value[0]


def has_own_chat_template(tokenizer) -> bool:
    template = getattr(tokenizer, "chat_template", None)
    return bool(template) and template != PLAIN_CHAT_TEMPLATE


def as_chat(tokenizer, prompt):
    """The prompt as this tokenizer's model should see it (see the module's docstring)."""
    if isinstance(prompt, str) and has_own_chat_template(tokenizer):
        return [{"role": "user", "content": prompt}]
    return prompt


def render_prompt(tokenizer, prompt) -> str:
    """The text a model continues: the chat template with the generation prompt, or the text."""
    prompt = as_chat(tokenizer, prompt)
    if is_conversational(prompt):
        return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    return prompt


def special_tokens(tokenizer, prompt) -> bool:
    """add_special_tokens for a rendered prompt: a chat template carries its own, text gets the tokenizer's."""
    return not is_conversational(as_chat(tokenizer, prompt))


def render_pair(tokenizer, prompt, response) -> str:
    """Prompt and response as the RewardTrainer saw a pair: a chat rendered with the template, or
    the text with the eos token appended (encoders such as MiniLM have none: nothing appended)."""
    prompt = as_chat(tokenizer, prompt)
    if is_conversational(prompt):
        reply = response if isinstance(response, list) else [{"role": "assistant", "content": str(response)}]
        return tokenizer.apply_chat_template(prompt + reply, tokenize=False)
    text = prompt + (response if isinstance(response, str) else str(response))
    eos = tokenizer.eos_token
    return text + eos if eos and not text.endswith(eos) else text


def chat_rows(dataset, tokenizer):
    """A snapshot split (datasets.Dataset) with text rows turned into one user turn and assistant
    answers, for a model with a template of its own; unchanged otherwise. TRL then applies the
    template to them as to any conversational rows."""
    if dataset is None or not has_own_chat_template(tokenizer) or "prompt" not in dataset.column_names:
        return dataset
    if len(dataset) == 0 or not isinstance(dataset[0]["prompt"], str):
        return dataset
    answers = [c for c in ANSWER_COLUMNS if c in dataset.column_names]

    def convert(row):
        out = {"prompt": [{"role": "user", "content": row["prompt"]}]}
        for column in answers:
            value = row[column]
            out[column] = value if is_conversational(value) else [{"role": "assistant", "content": value}]
        return out

    return dataset.map(convert, desc="Prompts as user turns (the model has a chat template)")
