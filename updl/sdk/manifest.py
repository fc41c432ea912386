"""Checksum manifests in the GNU ``md5sum``/``sha256sum`` format, and checking files against one.

A line is ``<hex>  <path>`` (two spaces; `` *<path>`` is read too). Like GNU
coreutils, a path containing ``\\``, a newline or a carriage return is written
escaped (``\\\\``, ``\\n``, ``\\r``) with a ``\\`` before the digest, so
``md5sum -c`` / ``sha256sum -c`` accept every manifest written here. The
algorithm of a manifest being read is told by the digest length (32 or 64 hex digits).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import ChecksumMismatchError, ManifestError, MissingFilesError
from .hashing import digest_file

__all__ = [
    "ALGORITHMS",
    "Entry",
    "VerifyResult",
    "format_line",
    "parse_manifest",
    "read_manifest",
    "verify_manifest",
    "write_manifest",
]

#: Algorithm name -> hex digest length.
ALGORITHMS: dict[str, int] = {"md5": 32, "sha256": 64}
_LINE = re.compile(r"^(\\?)([0-9a-fA-F]{32}|[0-9a-fA-F]{64}) [ *](.+)$", re.DOTALL)


@dataclass(frozen=True)
class Entry:
    """One manifest line: ``digest`` (lowercase hex) of the file at ``path`` (``/``-separated)."""

    digest: str
    path: str

    @property
    def algorithm(self) -> str:
        """``md5`` or ``sha256``, from the digest length."""
        return "md5" if len(self.digest) == 32 else "sha256"


@dataclass(frozen=True)
class VerifyResult:
    """``status`` is ``OK``, ``FAILED`` or ``MISSING`` (as ``md5sum -c`` prints them)."""

    entry: Entry
    status: str
    actual: str | None = None


def _escape(path: str) -> tuple[str, str]:
    if not any(c in path for c in "\\\n\r"):
        return "", path
    return "\\", path.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def _unescape(path: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r", "\\": "\\"}.get(m.group(1), m.group(0)), path)


def format_line(digest: str, path: str) -> str:
    """One manifest line, newline included, escaped the way GNU coreutils does."""
    mark, escaped = _escape(path)
    return f"{mark}{digest}  {escaped}\n"


def parse_manifest(lines: Iterable[str], source: str = "manifest") -> list[Entry]:
    """Entries of a manifest; blank lines are skipped, anything else unreadable raises :class:`ManifestError`."""
    entries: list[Entry] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\n")
        if line.endswith("\r") and not line.startswith("\\"):
            line = line[:-1]  # written on Windows
        if not line.strip():
            continue
        match = _LINE.match(line)
        if match is None:
            raise ManifestError(f"{source}, line {number}: not a checksum line ('<hex>  <path>')")
        path = _unescape(match.group(3)) if match.group(1) else match.group(3)
        entries.append(Entry(match.group(2).lower(), path))
    if len({e.algorithm for e in entries}) > 1:
        raise ManifestError(f"{source} mixes MD5 and SHA-256 digests")
    return entries


def read_manifest(path: str | os.PathLike[str]) -> list[Entry]:
    """Read and parse a manifest file (UTF-8)."""
    with open(path, encoding="utf-8", newline="\n", errors="surrogateescape") as f:
        return parse_manifest(f, str(path))


def write_manifest(path: str | os.PathLike[str], entries: Iterable[Entry]) -> None:
    """Write ``entries`` sorted by path; atomically (temporary file, then rename)."""
    target = Path(path)
    temporary = target.with_name(f".{target.name}.tmp")
    with open(temporary, "w", encoding="utf-8", newline="\n", errors="surrogateescape") as f:
        for entry in sorted(entries, key=lambda e: e.path):
            f.write(format_line(entry.digest, entry.path))
    os.replace(temporary, target)


def _check(entry: Entry, base: Path) -> VerifyResult:
    target = base / entry.path
    try:
        actual = digest_file(target, (entry.algorithm,))[entry.algorithm]
    except FileNotFoundError:
        return VerifyResult(entry, "MISSING")
    except IsADirectoryError:
        return VerifyResult(entry, "FAILED")
    return VerifyResult(entry, "OK" if actual == entry.digest else "FAILED", actual)


def verify_manifest(
    manifest: str | os.PathLike[str],
    base: str | os.PathLike[str] = ".",
    *,
    on_result: Callable[[VerifyResult], None] | None = None,
) -> list[VerifyResult]:
    """Check each listed file (relative to ``base``) against its digest, reading each file once.

    Raises :class:`~updl.sdk.errors.ChecksumMismatchError` when any file
    FAILED, else :class:`MissingFilesError` when any is MISSING, after every
    result has gone to ``on_result``.
    """
    results = []
    for result in _iter_checks(read_manifest(manifest), Path(base)):
        results.append(result)
        if on_result is not None:
            on_result(result)
    failed = sum(r.status == "FAILED" for r in results)
    missing = sum(r.status == "MISSING" for r in results)
    total = len(results)
    if failed:
        extra = f" ({missing} missing)" if missing else ""
        raise ChecksumMismatchError(f"{failed} of {total} files listed in {manifest} FAILED verification{extra}")
    if missing:
        raise MissingFilesError(f"{missing} of {total} files listed in {manifest} are MISSING")
    return results


def _iter_checks(entries: list[Entry], base: Path) -> Iterator[VerifyResult]:
    for entry in entries:
        yield _check(entry, base)
