"""Train/test split by group: every item of a group lands on the same side, so no group is in
both train and test (even when two items, or two projects, share it).

An item's group is `metadata.group` when the import gave one; otherwise the conversation it
belongs to, named by its first message (so the turns of one conversation, imported as
separate items that share their opening, stay together); for a plain text prompt, the prompt.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

SPLIT_RULE = (
    "The split is by group: an item's group is its `metadata.group` when the import gave one, otherwise"
    " its conversation (named by the first message that is not a system message; for a plain text"
    " prompt, the prompt itself). A hash of the group with seed {seed} sends every item of a group to the"
    " same side (test share {test_share}), so no group, no conversation and no prompt is in both train and test."
)


def prompt_key(prompt: Any) -> str:
    """A stable text for a prompt: the string itself, or the messages as canonical JSON."""
    if isinstance(prompt, str):
        return prompt
    return json.dumps(prompt, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def group_key(prompt: Any, metadata: dict | None = None) -> str:
    """The text the split hashes for an item. The first *non-system* message names a
    conversation: a system prompt shared by every conversation would put them all in one group."""
    group = (metadata or {}).get("group") if isinstance(metadata, dict) else None
    if group is not None and group != "":
        return "g\x00" + (group if isinstance(group, str) else json.dumps(group, sort_keys=True))
    if isinstance(prompt, list) and prompt:
        opening = next((m for m in prompt if not (isinstance(m, dict) and m.get("role") == "system")), prompt[0])
        content = opening.get("content") if isinstance(opening, dict) else opening
        return prompt_key(content if isinstance(content, str) else [opening])
    return prompt_key(prompt)


def split_of(prompt: Any, *, seed: int, test_share: float, metadata: dict | None = None) -> str:
    """'train' or 'test', from a hash of the seed and the item's group (uniform in [0, 1))."""
    if test_share <= 0:
        return "train"
    digest = hashlib.blake2b(f"{seed}\x00{group_key(prompt, metadata)}".encode(), digest_size=8).digest()
    return "test" if int.from_bytes(digest, "big") / 2**64 < test_share else "train"
