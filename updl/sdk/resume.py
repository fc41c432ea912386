"""The resume store: what an interrupted transfer needs to continue in the next process.

One small JSON file, ``<user cache dir>/updl/resume.json`` by default:

- ``uploads``: a resumable upload's URL, keyed by server URL, name, the
  file's absolute path, size and ``mtime_ns`` (a changed file never resumes
  an old upload);
- ``downloads``: the ``ETag`` a ``.part`` file's bytes came from, keyed by
  the ``.part``'s absolute path (sent back as ``If-Range``).

Every read-modify-write holds an ``flock`` on ``resume.lock`` beside it and
replaces the file atomically (temporary file + ``os.replace``), so concurrent
``updl`` processes never lose each other's entries. It is a cache: a missing
file just means nothing resumes, and a damaged or unreadable one is ignored
with one warning (per process) and rewritten, never an error.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

__all__ = ["ResumeStore", "UploadEntry", "UploadKey", "default_resume_path"]

logger = logging.getLogger("updl")
VERSION = 1
_warned: set[str] = set()  # stores already warned about in this process: one warning each
# Entries of the server's tus uploads expire there (24 h by default); keep ours no longer.
DEFAULT_UPLOAD_TTL = 24 * 3600.0
DOWNLOAD_TTL = 30 * 24 * 3600.0


def default_resume_path() -> Path:
    """``<user cache dir>/updl/resume.json`` (honours ``XDG_CACHE_HOME`` when called)."""
    return platformdirs.user_cache_path("updl") / "resume.json"


@dataclass(frozen=True)
class UploadKey:
    """What makes an upload resumable: same server, name, file, size and modification time."""

    server: str
    name: str
    path: str
    size: int
    mtime_ns: int

    @classmethod
    def for_file(cls, server: str, name: str, path: Path) -> UploadKey:
        """The key for uploading ``path`` as ``name`` to ``server`` now."""
        stat = path.stat()
        return cls(server, name, str(path.resolve()), stat.st_size, stat.st_mtime_ns)

    def text(self) -> str:
        """The key as stored."""
        return json.dumps([self.server, self.name, self.path, self.size, self.mtime_ns])


@dataclass(frozen=True)
class UploadEntry:
    """A resumable upload in progress: its URL path on the server, remembered until ``expires``."""

    url: str
    expires: float


class ResumeStore:
    """The resume file (see the module docstring); every method is one locked transaction."""

    def __init__(self, path: Path | None = None) -> None:
        """Use ``path`` (default: :func:`default_resume_path`, resolved now)."""
        self.path = path if path is not None else default_resume_path()

    def upload(self, key: UploadKey) -> UploadEntry | None:
        """The unexpired entry for ``key``, or ``None``."""
        with self._transaction() as data:
            raw = data["uploads"].get(key.text())
        if not raw:
            return None
        return UploadEntry(str(raw["url"]), float(raw["expires"]))

    def remember_upload(self, key: UploadKey, entry: UploadEntry) -> None:
        """Record (or replace) the upload for ``key``."""
        with self._transaction(write=True) as data:
            data["uploads"][key.text()] = {"url": entry.url, "expires": entry.expires}

    def forget_upload(self, key: UploadKey) -> None:
        """Drop the entry for ``key`` (absent is fine)."""
        with self._transaction(write=True) as data:
            data["uploads"].pop(key.text(), None)

    def download_etag(self, part: Path, server: str, name: str) -> str | None:
        """The ETag the bytes in ``part`` came from, if they came from ``server``'s ``name``."""
        with self._transaction() as data:
            raw = data["downloads"].get(str(part.resolve()))
        if not raw or raw.get("server") != server or raw.get("name") != name:
            return None
        return str(raw["etag"])

    def remember_download(self, part: Path, server: str, name: str, etag: str) -> None:
        """Record which version of ``name`` the bytes in ``part`` belong to."""
        with self._transaction(write=True) as data:
            data["downloads"][str(part.resolve())] = {
                "server": server, "name": name, "etag": etag,
                "expires": time.time() + DOWNLOAD_TTL}

    def forget_download(self, part: Path) -> None:
        """Drop the entry for ``part``."""
        with self._transaction(write=True) as data:
            data["downloads"].pop(str(part.resolve()), None)

    @contextlib.contextmanager
    def _transaction(self, write: bool = False) -> Iterator[dict[str, Any]]:
        """Yield the store's data under the lock; write it back (pruned) if ``write`` or if it was damaged."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock = open(self.path.with_name(self.path.name + ".lock"), "a+b")  # noqa: SIM115
        except OSError as exc:
            self._warn(f"cannot use it ({exc})")
            yield _empty()
            return
        with lock:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            except OSError as exc:  # e.g. ENOLCK on a network file system
                self._warn(f"cannot lock it ({exc})")
                yield _empty()
                return
            data, damage = self._load()
            if damage is not None:
                self._warn(f"it is damaged ({damage}); starting it afresh")
            yield data
            if write or damage is not None:
                self._save(data)

    def _warn(self, problem: str) -> None:
        if str(self.path) not in _warned:
            _warned.add(str(self.path))
            logger.warning("ignoring the resume store %s: %s; interrupted transfers will start over",
                           self.path, problem)

    def _load(self) -> tuple[dict[str, Any], str | None]:
        """The live entries, and what is wrong with the file (None: nothing, or it does not exist)."""
        try:
            with self.path.open("rb") as f:
                data = json.load(f)
        except FileNotFoundError:
            return _empty(), None
        except OSError as exc:
            return _empty(), exc.strerror or str(exc)
        except ValueError as exc:  # not JSON, or not UTF-8
            return _empty(), f"not JSON: {exc}"
        if not isinstance(data, dict) or data.get("version") != VERSION:
            return _empty(), f"not a version-{VERSION} store"
        now = time.time()
        live = _empty()
        for section, valid in (("uploads", _valid_upload), ("downloads", _valid_download)):
            entries = data.get(section)
            if not isinstance(entries, dict) or not all(
                    isinstance(k, str) and isinstance(v, dict) and valid(v) for k, v in entries.items()):
                return _empty(), f"malformed {section!r} section"
            live[section] = {k: v for k, v in entries.items() if v["expires"] > now}
        return live, None

    def _save(self, data: dict[str, Any]) -> None:
        try:
            fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".resume-", suffix=".json")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, self.path)
        except OSError as exc:
            self._warn(f"cannot write it ({exc})")
            with contextlib.suppress(OSError, UnboundLocalError):
                os.unlink(temp)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _valid_upload(entry: dict[str, Any]) -> bool:
    return isinstance(entry.get("url"), str) and _number(entry.get("expires"))


def _valid_download(entry: dict[str, Any]) -> bool:
    return (all(isinstance(entry.get(k), str) for k in ("server", "name", "etag"))
            and _number(entry.get("expires")))


def _empty() -> dict[str, Any]:
    return {"version": VERSION, "uploads": {}, "downloads": {}}
