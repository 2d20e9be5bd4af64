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


MIN_TEST_ROWS = 50


def suggested_test_share(*, total: int, target: int = MIN_TEST_ROWS) -> float | None:
    """The test share that would put about `target` rows in the test split (rounded up to a
    hundredth); None when even half the rows would not reach it."""
    if total <= 0:
        return None
    share = -(-100 * target // total) / 100  # ceil to 0.01
    return share if share <= 0.5 else None


def split_size_warnings(manifest: dict, *, formats: tuple[str, ...] | None = None, nouns: dict[str, str] | None = None) -> list[str]:
    """One sentence per format whose test split holds fewer than 50 rows (and is not empty of
    training data too): how many, and the test share that would give 50. A share measured on
    rows is approximate, because the split is by prompt."""
    counts = (manifest or {}).get("counts") or {}
    share_now = ((manifest or {}).get("options") or {}).get("test_share")
    out = []
    for fmt in formats or tuple(k for k in counts if k != "judgments"):
        split = counts.get(fmt) or {}
        train, test = int(split.get("train") or 0), int(split.get("test") or 0)
        if train + test == 0 or test >= MIN_TEST_ROWS:
            continue
        noun = (nouns or {}).get(fmt, "rows")
        share = suggested_test_share(total=train + test)
        now = f" at test share {share_now}" if share_now is not None else ""
        advice = (f"a test share of about {share:g} would give {MIN_TEST_ROWS}" if share is not None
                  else f"the {fmt} file has only {train + test} {noun} in all: collect more before trusting test figures")
        out.append(f"The {fmt} test split holds {test} {noun}{now}, fewer than {MIN_TEST_ROWS}: accuracies on it are "
                   f"rough (wide intervals); {advice}.")
    return out
