"""Numbers in what clients send: one strict parser for every numeric header and parameter.

``str.isdigit`` accepts digits that are not ASCII (``²``, ``٣``), which ``int``
then refuses or silently reads, and ``int`` refuses more than 4300 digits:
either way a hostile value used to become a 500. Here a count is 1 to 19
ASCII digits no larger than a signed 64-bit integer (the catalog's
``BigInteger``), and anything else is refused before ``int`` sees it.
"""

from __future__ import annotations

import re

from .errors import bad_request

MAX_COUNT = 2**63 - 1
MAX_DIGITS = len(str(MAX_COUNT))  # 19
# Not \d: in Python that matches every Unicode decimal digit.
_COUNT = re.compile(f"[0-9]{{1,{MAX_DIGITS}}}")


def parse_count(text: str | None) -> int | None:
    """``text`` as a non-negative integer, or ``None`` unless it is one.

    Accepted: 1 to 19 ASCII digits (surrounding spaces and tabs, which HTTP
    allows around a field value, are ignored) whose value is at most ``MAX_COUNT``.
    """
    if text is None:
        return None
    text = text.strip(" \t")
    if _COUNT.fullmatch(text) is None:
        return None
    value = int(text)
    return value if value <= MAX_COUNT else None


def count_field(text: str | None, field: str) -> int:
    """A required count (header or query parameter ``field``); the contract's 400 otherwise."""
    value = parse_count(text)
    if value is None:
        raise bad_request(f"{field} must be a non-negative integer in ASCII digits (at most {MAX_DIGITS})", field=field)
    return value
