"""The resume store: what an interrupted transfer needs to continue in the next process.

One small JSON file, ``<user cache dir>/updl/resume.json`` by default:

- ``uploads``: a resumable upload's URL, keyed by server URL, name, the
  file's absolute path, size and ``mtime_ns`` (a changed file never resumes
  an old upload);
- ``downloads``: the ``ETag`` a ``.part`` file's bytes came from, keyed by
  the ``.part``'s absolute path (sent back as ``If-Range``).

Every read-modify-write holds an ``flock`` on ``resume.lock`` beside it and
replaces the file atomically (temporary file + ``os.replace``), so concurrent
``updl`` processes never lose each other's entries. It is a cache: a missing,
corrupt or unwritable file just means nothing resumes.
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
        """Yield the store's data under the lock; write it back (pruned) if ``write``."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock = open(self.path.with_name(self.path.name + ".lock"), "a+b")  # noqa: SIM115
        except OSError as exc:
            logger.debug("resume store unavailable (%s); transfers will not resume", exc)
            yield _empty()
            return
        with lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            data = self._load()
            yield data
            if write:
                self._save(data)

    def _load(self) -> dict[str, Any]:
        try:
            with self.path.open("rb") as f:
                data = json.load(f)
        except (OSError, ValueError):
            return _empty()
        if not isinstance(data, dict) or data.get("version") != VERSION:
            return _empty()
        now = time.time()
        return {"version": VERSION, **{
            section: {k: v for k, v in dict(data.get(section) or {}).items()
                      if isinstance(v, dict) and float(v.get("expires", 0)) > now}
            for section in ("uploads", "downloads")}}

    def _save(self, data: dict[str, Any]) -> None:
        try:
            fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".resume-", suffix=".json")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, self.path)
        except OSError as exc:
            logger.debug("cannot write the resume store %s: %s", self.path, exc)
            with contextlib.suppress(OSError, UnboundLocalError):
                os.unlink(temp)


def _empty() -> dict[str, Any]:
    return {"version": VERSION, "uploads": {}, "downloads": {}}
