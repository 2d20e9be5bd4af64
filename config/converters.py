"""URL converters shared by every app, registered once (config/__init__.py).

`<id:...>` is `<int:...>` bounded to what a database id can be. Django's int converter accepts
any run of digits, and a number past 64 bits reached the database lookup, where SQLite raised
OverflowError (a 500) instead of finding nothing. Past the bound the URL simply does not match:
404, like any other id that does not exist.
"""
from __future__ import annotations

from django.urls import register_converter

# The largest value of a signed 64-bit column (BigAutoField, PositiveIntegerField ...).
MAX_ID = 2**63 - 1


class IdConverter:
    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > MAX_ID:
            # ValueError tells the resolver "no match here", so the request ends in a 404.
            raise ValueError(f"{value} is out of range for an id")
        return number

    def to_url(self, value: int) -> str:
        return str(int(value))


def register() -> None:
    register_converter(IdConverter, "id")
