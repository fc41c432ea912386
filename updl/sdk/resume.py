"""The resume store: what an interrupted transfer needs to continue in the next process.

One small JSON file, ``<user cache dir>/updl/resume.json`` by default:

- ``uploads``: a resumable upload's URL, keyed by server URL, name, the
  file's absolute path, size and ``mtime_ns`` (a changed file never resumes
  an old upload);
- ``downloads``: the temporary file a download writes into, keyed by server
  URL, name and the destination's absolute path: its name in the
  destination's directory, its device and inode (so a file someone else put
  at that name is never taken for ours) and the ``ETag`` its bytes came from
  (sent back as ``If-Range``).

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

__all__ = ["DownloadEntry", "DownloadKey", "ResumeStore", "UploadEntry", "UploadKey", "default_resume_path"]

logger = logging.getLogger("updl")
# 2: download entries keyed by destination and naming their temporary file (1 keyed them by
# ``DEST.part``); a version-1 file keeps its uploads.
VERSION = 2
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


@dataclass(frozen=True)
class DownloadKey:
    """Which download a temporary file belongs to: same server, name and destination."""

    server: str
    name: str
    target: str

    @classmethod
    def for_target(cls, server: str, name: str, target: Path) -> DownloadKey:
        """The key for downloading ``name`` from ``server`` to ``target`` (its directory resolved)."""
        return cls(server, name, str(target.parent.resolve() / target.name))

    def text(self) -> str:
        """The key as stored."""
        return json.dumps([self.server, self.name, self.target])


@dataclass(frozen=True)
class DownloadEntry:
    """A download in progress: its temporary file's ``part`` name beside the destination, that file's
    ``device`` and ``inode``, and the ``etag`` of the version its bytes came from (None: not yet known)."""

    part: str
    device: int
    inode: int
    etag: str | None = None


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

    def download(self, key: DownloadKey) -> DownloadEntry | None:
        """The entry for ``key``, or ``None``."""
        with self._transaction() as data:
            raw = data["downloads"].get(key.text())
        if not raw:
            return None
        return DownloadEntry(raw["part"], raw["device"], raw["inode"], raw.get("etag"))

    def remember_download(self, key: DownloadKey, entry: DownloadEntry) -> None:
        """Record (or replace) the download for ``key``."""
        with self._transaction(write=True) as data:
            data["downloads"][key.text()] = {
                "part": entry.part,
                "device": entry.device,
                "inode": entry.inode,
                "etag": entry.etag,
                "expires": time.time() + DOWNLOAD_TTL,
            }

    def forget_download(self, key: DownloadKey, part: str) -> None:
        """Drop the entry for ``key`` if it still names ``part`` (another process may have replaced it)."""
        with self._transaction(write=True) as data:
            if (data["downloads"].get(key.text()) or {}).get("part") == part:
                del data["downloads"][key.text()]

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
            logger.warning(
                "ignoring the resume store %s: %s; interrupted transfers will start over", self.path, problem
            )

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
        if not isinstance(data, dict) or data.get("version") not in (1, VERSION):
            return _empty(), "not a version-1 or -2 store"
        if data["version"] == 1:
            data = {"version": VERSION, "uploads": data.get("uploads"), "downloads": {}}
        now = time.time()
        live = _empty()
        for section, valid in (("uploads", _valid_upload), ("downloads", _valid_download)):
            entries = data.get(section)
            if not isinstance(entries, dict) or not all(
                isinstance(k, str) and isinstance(v, dict) and valid(v) for k, v in entries.items()
            ):
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
    part = entry.get("part")
    return (
        isinstance(part, str)
        and part not in ("", ".", "..")
        and "/" not in part
        and "\0" not in part
        and all(isinstance(entry.get(k), int) for k in ("device", "inode"))
        and isinstance(entry.get("etag"), (str, type(None)))
        and _number(entry.get("expires"))
    )


def _empty() -> dict[str, Any]:
    return {"version": VERSION, "uploads": {}, "downloads": {}}
