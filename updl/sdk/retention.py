"""Retention on the client: durations (``14d``), upload expiry, and cleanup by prefix and age.

The server keeps a file until its ``expires`` (set from ``Client.upload(...,
expires_in=)``, the user's or the server's default retention) and then
deletes it. :func:`remove_prefix` is the cleanup an operator runs by hand:
every file below a prefix, optionally only those older than a given age,
listed first (the dry run stops there) and then deleted one by one.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from .errors import NotFoundError
from .models import FileInfo

__all__ = ["MAX_EXPIRES_IN", "parse_duration", "remove_prefix", "seconds_of", "selected_for_removal"]

MAX_EXPIRES_IN = 100 * 366 * 24 * 3600  # the server's bound: a century
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*([0-9]{1,12})\s*([smhdw]?)\s*$", re.IGNORECASE)


def parse_duration(text: str) -> int:
    """``"14d"``, ``"12h"``, ``"90m"``, ``"2w"``, ``"45s"`` or plain seconds, as seconds; ``ValueError`` otherwise."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r} (use seconds or a suffix: 90m, 12h, 14d, 2w)")
    return _checked(int(match.group(1)) * _UNITS[match.group(2).lower() or "s"])


def seconds_of(value: int | timedelta | None) -> int | None:
    """Whole seconds of an expiry (``None`` stays ``None``); ``ValueError`` below 1 s or above a century."""
    if value is None:
        return None
    seconds = int(value.total_seconds()) if isinstance(value, timedelta) else int(value)
    return _checked(seconds)


def _checked(seconds: int) -> int:
    if not 1 <= seconds <= MAX_EXPIRES_IN:
        raise ValueError(f"an expiry must be 1 second to {MAX_EXPIRES_IN // 86400} days, not {seconds} s")
    return seconds


def selected_for_removal(
    files: Iterable[FileInfo], older_than: int | timedelta | None = None, now: datetime | None = None
) -> list[FileInfo]:
    """The files created more than ``older_than`` (seconds) before ``now``; all of them without it."""
    if older_than is None:
        return list(files)
    age = older_than if isinstance(older_than, timedelta) else timedelta(seconds=older_than)
    cutoff = (now or datetime.now(UTC)) - age
    return [f for f in files if f.created < cutoff]


def remove_prefix(
    files: Iterable[FileInfo],
    delete: Callable[[str], None],
    *,
    older_than: int | timedelta | None = None,
    dry_run: bool = False,
    on_removed: Callable[[FileInfo], None] | None = None,
    now: datetime | None = None,
) -> list[FileInfo]:
    """Delete the ``files`` :func:`selected_for_removal` (none with ``dry_run``); return them.

    A file already gone (deleted or expired meanwhile) counts as removed.
    ``on_removed`` is called after each deletion (for each file, in a dry run).
    """
    chosen = selected_for_removal(files, older_than, now)
    for info in chosen:
        if not dry_run:
            with contextlib.suppress(NotFoundError):
                delete(info.name)
        if on_removed is not None:
            on_removed(info)
    return chosen
