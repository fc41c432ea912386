"""Conditional requests (RFC 9110 section 13): ``If-Match`` and ``If-None-Match`` over MD5 ETags.

A file version's ETag is its quoted MD5. Downloads answer 304 when
``If-None-Match`` names the current version; uploads carry a ``Preconditions``
that is checked twice: cheaply before the body is read (refuse early) and
definitively by the catalog under its row lock at commit time (so two racing
``If-None-Match: *`` uploads end in exactly one 200 and one 412).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import HTTPError, bad_request

ANY = "*"
# One entity-tag: optional weakness prefix, then a quoted opaque tag (no quotes inside).
_TAG = re.compile(r'\s*(W/)?"([^"]*)"\s*(?:,|$)')


@dataclass(frozen=True)
class TagList:
    """A parsed ``If-Match``/``If-None-Match`` value: ``*``, or entity tags (weak ones marked)."""

    any: bool
    strong: frozenset[str]
    weak: frozenset[str]

    @classmethod
    def parse(cls, header: str, field: str) -> TagList:
        """Parse ``*`` or ``"a", W/"b"``; 400 when malformed."""
        if header.strip() == ANY:
            return cls(True, frozenset(), frozenset())
        strong: set[str] = set()
        weak: set[str] = set()
        position = 0
        text = header.strip()
        while position < len(text):
            match = _TAG.match(text, position)
            if match is None:
                raise bad_request(f"malformed {field}: expected * or quoted entity tags", header=field, value=header)
            (weak if match.group(1) else strong).add(match.group(2))
            position = match.end()
        if not strong and not weak:
            raise bad_request(f"malformed {field}: empty", header=field, value=header)
        return cls(False, frozenset(strong), frozenset(weak))

    def matches_strong(self, md5: str | None) -> bool:
        """Strong comparison (``If-Match``): weak tags never match; ``*`` matches any version."""
        return md5 is not None and (self.any or md5 in self.strong)

    def matches_weak(self, md5: str | None) -> bool:
        """Weak comparison (``If-None-Match``): a weak tag matches its strong twin."""
        return md5 is not None and (self.any or md5 in self.strong or md5 in self.weak)


@dataclass(frozen=True)
class Preconditions:
    """An upload's conditions on the version it replaces (both absent: always allowed)."""

    if_match: TagList | None = None
    if_none_match: TagList | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Preconditions:
        """Read ``If-Match`` and ``If-None-Match`` (400 if malformed)."""
        if_match = headers.get("if-match")
        if_none_match = headers.get("if-none-match")
        return cls(
            None if if_match is None else TagList.parse(if_match, "If-Match"),
            None if if_none_match is None else TagList.parse(if_none_match, "If-None-Match"),
        )

    def __bool__(self) -> bool:
        """Whether there is anything to check."""
        return self.if_match is not None or self.if_none_match is not None

    def allows(self, current_md5: str | None) -> bool:
        """Whether a write may replace the version with ``current_md5`` (``None``: no file)."""
        if self.if_match is not None and not self.if_match.matches_strong(current_md5):
            return False
        return self.if_none_match is None or not self.if_none_match.matches_weak(current_md5)


def not_modified(header: str | None, md5: str) -> bool:
    """Whether a ``GET``/``HEAD`` with this ``If-None-Match`` should get 304 for version ``md5``.

    A malformed header is ignored here (the full answer is always correct for a read).
    """
    if header is None:
        return False
    try:
        return TagList.parse(header, "If-None-Match").matches_weak(md5)
    except HTTPError:
        return False


def precondition_failed(name: str, current_md5: str | None) -> HTTPError:
    """The 412 answer: the current version (``current_md5``, ``None`` if absent) was refused."""
    return HTTPError(412, "precondition failed", name=name, current_md5=current_md5)
