"""Train/test split by prompt: the same prompt text always lands on the same side, so no prompt
is in both train and test (even when two items, or two projects, share it)."""
from __future__ import annotations

import hashlib
import json
from typing import Any


def prompt_key(prompt: Any) -> str:
    """A stable text for a prompt: the string itself, or the messages as canonical JSON."""
    if isinstance(prompt, str):
        return prompt
    return json.dumps(prompt, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def split_of(prompt: Any, *, seed: int, test_share: float) -> str:
    """'train' or 'test', from a hash of the seed and the prompt (uniform in [0, 1))."""
    if test_share <= 0:
        return "train"
    digest = hashlib.blake2b(f"{seed}\x00{prompt_key(prompt)}".encode(), digest_size=8).digest()
    return "test" if int.from_bytes(digest, "big") / 2**64 < test_share else "train"
