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
