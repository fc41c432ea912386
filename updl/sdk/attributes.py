"""File attributes that travel with the bytes: permission bits (``mode``) and modification time (``mtime``).

An upload records them from the local file (``stat``: ``mode & 0o777`` and
``st_mtime``) as multipart fields ``mode``/``mtime``, tus ``Upload-Metadata``
keys of the same names, or ``Updl-Mode``/``Updl-Mtime`` headers; the server
returns them in FileInfo and in the headers of ``GET``/``HEAD``. A download
to a path applies them to the temporary file before it is renamed into place,
so the file appears complete with its mode and time at once.

Which bits: all nine permission bits, never setuid, setgid or sticky (the
server refuses those), and restored *through the umask* as ``tar`` does for
a non-root user: ``0755`` arrives as ``0755`` under umask ``022`` and as
``0750`` under ``027``, so a download never grants more than the user's
own defaults allow. The executable bit, which CI artifacts lose elsewhere,
survives either way.
"""

from __future__ import annotations

import os
import re
import stat
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import BinaryIO

__all__ = [
    "FileAttributes",
    "apply_attributes",
    "format_mode",
    "local_attributes",
    "parse_mode",
    "umask",
]

PERMISSION_BITS = 0o777
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_OCTAL = re.compile(r"[0-7]{1,4}")
_umask_lock = threading.Lock()
_umask: int | None = None


@dataclass(frozen=True)
class FileAttributes:
    """A file's permission bits and modification time (aware, UTC); ``None``: not known."""

    mode: int | None = None
    mtime: datetime | None = None

    def fields(self) -> list[tuple[str, str]]:
        """``(key, value)`` pairs for the upload's fields, headers or metadata (known ones only)."""
        pairs: list[tuple[str, str]] = []
        if self.mode is not None:
            pairs.append(("mode", format_mode(self.mode)))
        if self.mtime is not None:
            pairs.append(("mtime", self.mtime.astimezone(UTC).isoformat().replace("+00:00", "Z")))
        return pairs

    def headers(self) -> dict[str, str]:
        """The same as ``Updl-Mode``/``Updl-Mtime`` request headers (an offer of content, a ``PUT``)."""
        return {f"Updl-{key.capitalize()}": value for key, value in self.fields()}


def parse_mode(value: object) -> int | None:
    """Permission bits from the server's octal text (``0755``), or ``None`` if absent or malformed."""
    if not isinstance(value, str) or not _OCTAL.fullmatch(value.strip()):
        return None
    mode = int(value.strip(), 8)
    return mode if mode <= PERMISSION_BITS else None


def format_mode(mode: int) -> str:
    """``0755``-style text."""
    return f"{mode & PERMISSION_BITS:04o}"


def _from_stat(st: os.stat_result) -> FileAttributes:
    return FileAttributes(st.st_mode & PERMISSION_BITS, _EPOCH + timedelta(microseconds=st.st_mtime_ns // 1000))


def local_attributes(source: object) -> FileAttributes | None:
    """The attributes of a path, or of a file object open on a regular file; ``None`` otherwise (a pipe)."""
    try:
        if isinstance(source, (str, os.PathLike)):
            st = os.stat(source)
        else:
            fileno = getattr(source, "fileno", None)
            if fileno is None:
                return None
            st = os.fstat(fileno())
    except (OSError, ValueError, AttributeError):  # io.BytesIO.fileno raises UnsupportedOperation (an OSError)
        return None
    return _from_stat(st) if stat.S_ISREG(st.st_mode) else None


def umask() -> int:
    """This process's umask (read once; from ``/proc`` where it can be, without changing it)."""
    global _umask
    with _umask_lock:
        if _umask is None:
            _umask = _read_umask()
        return _umask


def _read_umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    current = os.umask(0o022)  # elsewhere the only way to read it is to set it, and put it back
    os.umask(current)
    return current


def apply_attributes(file: BinaryIO, mode: int | None, mtime: datetime | None) -> None:
    """Set ``mode`` (through the umask) and ``mtime`` on an open file; ``None`` leaves that one alone.

    The access time becomes now (the file was just written).
    """
    fd = file.fileno()
    if mode is not None:
        os.fchmod(fd, mode & PERMISSION_BITS & ~umask())
    if mtime is not None:
        aware = mtime if mtime.tzinfo is not None else mtime.replace(tzinfo=UTC)
        mtime_ns = (aware - _EPOCH) // timedelta(microseconds=1) * 1000
        os.utime(fd, ns=(time.time_ns(), mtime_ns))
