"""Untrusted JSON, parsed within limits: one place for the API (SafeJSONParser), the labelling
page's submit and the importers.

Two things in valid JSON used to end in a 500 far from where they came in:
- nesting: Python's json recursion stops near 1,000 levels with RecursionError, and a value a
  few hundred levels deep still broke later (storing it, rendering it). Past MAX_DEPTH levels
  the input is refused where it is parsed.
- lone surrogates: "\\ud800" is valid JSON but not a character; the str it becomes cannot be
  encoded as UTF-8, so writing it to the database or a response failed. Refused too.

Both errors name where in the document the problem sits ("value.ranking[0]", "items[3].prompt").
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

from django.conf import settings

# Lone surrogates only: a valid pair ("\\ud83d\\ude00") decodes to one character outside this range.
_SURROGATE = re.compile("[\ud800-\udfff]")
# What a lone surrogate looks like in raw JSON: an escape \uD800..\uDFFF (its UTF-8-style encoding
# fails strict decoding). A literal prefix, so the search runs at memchr speed.
_RAW_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


def escaped(text: str) -> str:
    """The text with each lone surrogate written as its escape ("\\ud800"): a key that holds one
    can still be named in an error, and the error can still be encoded as UTF-8."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class UnsafeJSON(ValueError):
    """`field` is a path into the document ("" for the document itself). Both `field` and
    `message` are safe to encode: a key with a lone surrogate is named by its escape."""

    def __init__(self, field: str, message: str):
        field, message = escaped(field), escaped(message)
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


class _NonFinite(float):
    """What the decoder makes of NaN, Infinity and numbers too large for a float (1e999): kept as
    a marker so that check() can name the field it sits in, then refused."""

    def __new__(cls, text: str):
        number = super().__new__(cls, "nan")
        number.text = text
        return number


def max_depth() -> int:
    return settings.ARBITER_JSON_MAX_DEPTH


def _join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def has_surrogate(text: str) -> bool:
    return _SURROGATE.search(text) is not None


def check(value: Any, *, depth: int | None = None, path: str = "", surrogates: bool = True) -> Any:
    """Raise UnsafeJSON for nesting deeper than `depth` or a string (or key) holding a lone
    surrogate; return the value unchanged. Iterative, so it cannot itself run out of stack."""
    limit = max_depth() if depth is None else depth
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        node, where, level = stack.pop()
        if isinstance(node, _NonFinite):
            raise UnsafeJSON(where, f"{node.text[:20]} is not a finite number")
        if isinstance(node, str):
            if surrogates and _SURROGATE.search(node):
                raise UnsafeJSON(where, "contains an invalid character (a lone UTF-16 surrogate such as \\ud800)")
            continue
        if isinstance(node, dict):
            children = node.items()
        elif isinstance(node, list):
            children = enumerate(node)
        else:
            continue
        if level >= limit:
            raise UnsafeJSON(where, f"is nested deeper than {limit} levels")
        for key, child in children:
            here = _join(where, key)
            if surrogates and isinstance(key, str) and _SURROGATE.search(key):
                raise UnsafeJSON(here, "contains an invalid character (a lone UTF-16 surrogate such as \\ud800)")
            stack.append((child, here, level + 1))
    return value


def _float(text: str) -> float:
    number = float(text)
    return number if math.isfinite(number) else _NonFinite(text)


# One decoder for every call: json.loads with a keyword builds a new one each time. NaN and
# Infinity (not JSON, but Python's json reads them) and overflowing numbers become markers that
# loads() refuses, naming where they sit.
_DECODER = json.JSONDecoder(parse_constant=_NonFinite, parse_float=_float)
# The raw marks of such a number: the constants, an exponent of three digits, a run of 300 digits.
_RAW_NON_FINITE = re.compile(rb"NaN|Infinity|[eE][+-]?\d{3}|\d{300}")


# A string (with the colon after it when it is a key) or a bracket: enough to follow nesting.
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"\s*:?|[\[\]{}]', re.DOTALL)


def _check_nesting(data: bytes, limit: int) -> None:
    """Follow the brackets of the raw document, before parsing it: json.loads would recurse once
    per level (RecursionError near 1,000). Names the top-level field the deep value is under."""
    depth, field = 0, ""
    for match in _TOKEN.finditer(data):
        token = match.group()
        first = token[:1]
        if first in b"[{":
            depth += 1
            if depth > limit:
                raise UnsafeJSON(field, f"is nested deeper than {limit} levels")
        elif first in b"]}":
            depth -= 1
        elif depth == 1 and token.endswith(b":"):
            try:
                field = json.loads(token[:-1])
            except ValueError:
                field = ""


def loads(data: bytes | str, *, depth: int | None = None) -> Any:
    """json.loads for untrusted input: strict (no NaN/Infinity, no number past a float's range),
    bounded nesting, no lone surrogates. Raises UnsafeJSON (a ValueError) naming the problem and,
    for the last three, the field."""
    limit = max_depth() if depth is None else depth
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    # Most documents are cleared cheaply: nesting past the limit needs more brackets than the
    # limit, and a lone surrogate leaves a mark in the raw text.
    if raw.count(b"[") + raw.count(b"{") > limit:
        _check_nesting(raw, limit)
    try:
        # Strict UTF-8 (json.loads would let UTF-8-encoded surrogates through with "surrogatepass").
        value = _DECODER.decode(data if isinstance(data, str) else raw.decode("utf-8-sig"))
    except RecursionError:
        raise UnsafeJSON("", f"is nested deeper than {limit} levels") from None
    except UnicodeDecodeError:
        raise UnsafeJSON("", "is not valid UTF-8") from None
    except ValueError as exc:
        raise UnsafeJSON("", f"is not valid JSON ({exc})") from None
    surrogates = _RAW_SURROGATE.search(raw) is not None
    if surrogates or _RAW_NON_FINITE.search(raw):
        check(value, depth=limit, surrogates=surrogates)
    return value


def scrub(value: Any) -> Any:
    """The value with every lone surrogate replaced by U+FFFD (the replacement character)."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    return value


class ScrubbingDecoder(json.JSONDecoder):
    """For JSON columns holding untrusted text (JSONField(decoder=...)): a lone surrogate stored
    before input was checked (SQLite keeps "\\ud800" escapes; PostgreSQL's jsonb refuses them)
    comes back as U+FFFD, so no page, API answer or export breaks on encoding it."""

    def decode(self, s, *args, **kwargs):
        value = super().decode(s, *args, **kwargs)
        if "\\u" in s and _TEXT_ESCAPE.search(s):
            value = scrub(value)
        return value


_TEXT_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
