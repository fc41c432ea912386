"""Downloads: to a path, resumable, or to a file object; both through one verify step.

:func:`download` picks the destination's kind; :func:`receive_verified` is
the one place a body is streamed, hashed and checked against the length and
MD5 the server announced. A file object receives the bytes as they arrive (a
seekable one is rewound for a retry; a pipe is retried only before its first
byte). The rest of this docstring is about paths.

The bytes go to ``.<dest name>.updl-<random>.part`` beside the destination,
created with ``O_EXCL | O_NOFOLLOW`` (so it is never a file or symlink that
was already there, e.g. another download's ``x.part`` or a user's file) and
recorded in the :mod:`~updl.sdk.resume` store under (server, name,
destination) with its inode: a rerun reopens it (``O_NOFOLLOW``) only if it
is still that same file, and the final ``os.replace`` only moves it if the
name still refers to the file we wrote. Every path operation goes through a
descriptor of the destination's directory, opened once and, for a batch,
checked to be inside its output directory — so what was checked is what is
written.

The temporary file is held under an exclusive ``flock`` for the whole
download, so two downloads to one destination never write into each other
(the second fails at once). A rerun, or a retry after the connection broke,
continues with ``Range: bytes=<size of the file>-`` and ``If-Range: <ETag the
bytes came from>``; when the file changed on the server the answer is the
whole file (200) and the temporary file starts over from 0. The MD5 is of the
whole file on disk — the existing prefix is hashed from disk first, then the
new bytes as they arrive — and is checked before the rename; on a mismatch
the temporary file is emptied (never reused) and the next attempt starts
from 0. A body longer than the size announced (or known from a listing) is
cut off: nothing beyond that size is written.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO, cast

import requests

from .attributes import apply_attributes
from .errors import (
    ChecksumMismatchError,
    ConnectionFailedError,
    ProtocolError,
    RangeNotSatisfiableError,
    UnsafeNameError,
    UpdlError,
)
from .hashing import CHUNK_SIZE, HashingWriter, hash_file
from .headers import expected_md5, expected_total, file_info, server_etag
from .models import FileInfo
from .progress import ProgressCallback, ProgressEvent, reporting
from .ranged import RangedDownload
from .resume import DownloadEntry, DownloadKey, ResumeStore
from .retry import Retrier
from .transport import Transport, file_path, translate

__all__ = [
    "BodyOpener",
    "Destination",
    "PartFile",
    "ResumableDownload",
    "StreamDownload",
    "download",
    "receive_body",
    "receive_verified",
    "required_md5",
]

Destination = str | os.PathLike[str] | BinaryIO
OpenBody = Callable[[dict[str, str]], requests.Response]


def receive_body(response: requests.Response, writer: HashingWriter, name: str, limit: int | None = None) -> None:
    """Stream the response body through ``writer`` and wait until it is all hashed and written.

    More than ``limit`` bytes (when known) is a :class:`ProtocolError`, raised
    before the excess is written. Network failures become updl errors; the
    writer is closed either way.
    """
    try:
        for chunk in response.iter_content(CHUNK_SIZE):
            if limit is not None and writer.bytes_written + len(chunk) > limit:
                raise ProtocolError(
                    f"{name}: the server sent more than the {limit} bytes expected; stopped there", response=response
                )
            writer.write(chunk)
    except requests.RequestException as exc:
        raise translate(exc) from exc
    finally:
        writer.close()


RANGES_MAX = 4 << 20  # bytes of a ranges record read at most
_NEW = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_REOPEN = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC


@contextlib.contextmanager
def _about(target: Path) -> Iterator[None]:
    """Report a local failure against the destination: the temporary name means nothing to the user."""
    try:
        yield
    except OSError as exc:
        if exc.errno is None or exc.filename is None:
            raise
        raise OSError(exc.errno, exc.strerror, str(target)) from exc


def _open_directory(target: Path, within: Path | None) -> int:
    """A descriptor of ``target``'s directory (created if missing), checked to be inside ``within``."""
    parent = target.parent
    base = within.resolve() if within is not None else None
    if base is not None and not target.resolve().is_relative_to(base):
        raise UnsafeNameError(f"refusing to write {target}: it resolves outside {within}")
    parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    if base is not None:
        # The directory we hold must be the one the check saw: a symlink swapped into the
        # path meanwhile gives another inode (directories have no hard links).
        real = parent.resolve()
        opened = os.fstat(fd)
        try:
            seen = os.stat(real) if real.is_relative_to(base) else None
        except OSError:
            seen = None
        if seen is None or (seen.st_dev, seen.st_ino) != (opened.st_dev, opened.st_ino):
            os.close(fd)
            raise UnsafeNameError(f"refusing to write {target}: it resolves outside {within}")
    return fd


class PartFile:
    """The temporary file of a download to ``target``: opened read-write and ``flock``ed until :meth:`close`.

    ``within``: refuse (``UnsafeNameError``) unless ``target``'s directory is inside it.
    """

    def __init__(self, target: Path, key: DownloadKey, store: ResumeStore, within: Path | None = None) -> None:
        """Reopen this download's temporary file, or create one (and its directory); ``UpdlError`` if
        another download to ``target`` holds it."""
        self.target = target
        self._key = key
        self._store = store
        self._dir = _open_directory(target, within)
        try:
            with _about(target):
                opened = self._reopen() or self._create()
        except BaseException:
            os.close(self._dir)
            raise
        fd, self.entry = opened
        self.file = os.fdopen(fd, "r+b")
        self.done = False

    def _reopen(self) -> tuple[int, DownloadEntry] | None:
        """The recorded temporary file, if it is still the very file we created."""
        entry = self._store.download(self._key)
        if entry is None:
            return None
        try:
            fd = os.open(entry.part, _REOPEN, dir_fd=self._dir)
        except OSError:  # gone, or a symlink (ELOOP): not ours any more
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UpdlError(f"another download to {self.target} is in progress; wait for it to finish") from None
        opened = os.fstat(fd)
        if (
            stat.S_ISREG(opened.st_mode)
            and (opened.st_dev, opened.st_ino) == (entry.device, entry.inode)
            and self._names(entry.part, opened)
        ):
            return fd, entry
        os.close(fd)  # someone else's file now has that name: leave it alone
        return None

    def _create(self) -> tuple[int, DownloadEntry]:
        """A new temporary file, under a name nothing else has (``O_EXCL``), recorded in the store."""
        stem = os.fsdecode(os.fsencode(self.target.name)[:200])  # room for the suffix in NAME_MAX
        while True:
            name = f".{stem}.updl-{secrets.token_hex(4)}.part"
            try:
                fd = os.open(name, _NEW, 0o666, dir_fd=self._dir)
            except FileExistsError:
                continue
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # nobody else knows the name yet
            created = os.fstat(fd)
            entry = DownloadEntry(name, created.st_dev, created.st_ino)
            self._store.remember_download(self._key, entry)
            return fd, entry

    def _names(self, name: str, opened: os.stat_result) -> bool:
        """Whether ``name`` in the directory still is the file ``opened`` (not replaced meanwhile)."""
        try:
            now = os.stat(name, dir_fd=self._dir, follow_symlinks=False)
        except OSError:
            return False
        return (now.st_dev, now.st_ino) == (opened.st_dev, opened.st_ino)

    def size(self) -> int:
        """Bytes on disk (after flushing what is buffered)."""
        self.file.flush()
        return os.fstat(self.file.fileno()).st_size

    @property
    def etag(self) -> str | None:
        """The ETag of the version the bytes on disk belong to (None: unknown)."""
        return self.entry.etag

    def remember(self, etag: str | None) -> None:
        """Record the version the bytes about to be written belong to."""
        if etag != self.entry.etag:
            self.entry = replace(self.entry, etag=etag)
            self._store.remember_download(self._key, self.entry)

    def restart(self) -> None:
        """Empty the file: its bytes are not to be reused."""
        self.file.seek(0)
        self.file.truncate()
        self.remember(None)
        self.forget_ranges()

    @property
    def _ranges_name(self) -> str:
        return self.entry.part[: -len(".part")] + ".ranges"

    def read_ranges(self) -> dict[str, Any] | None:
        """The record of a parallel download beside the file (:mod:`~updl.sdk.ranged`), if any.

        A record that is there but unreadable (or not a JSON object) is ``{}``: the file then has
        holes nobody can locate, and the reader must start over rather than take it for a prefix.
        """
        try:
            fd = os.open(self._ranges_name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self._dir)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as f:
            try:
                data = json.loads(f.read(RANGES_MAX))
            except ValueError:
                return {}
        return data if isinstance(data, dict) else {}

    def write_ranges(self, data: dict[str, Any]) -> None:
        """Replace the ranges record (temporary file + rename, through the directory descriptor)."""
        temp = self._ranges_name + ".new"
        with _about(self.target):
            fd = os.open(
                temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666, dir_fd=self._dir
            )
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f)
            os.replace(temp, self._ranges_name, src_dir_fd=self._dir, dst_dir_fd=self._dir)

    def forget_ranges(self) -> None:
        """Remove the ranges record (absent is fine)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._ranges_name, dir_fd=self._dir)

    def prefix_md5(self, length: int) -> Any:
        """MD5 of the first ``length`` bytes, read from disk; leaves the position at ``length``."""
        digest = hash_file(self.file, length=length)["md5"]
        self.file.seek(length)
        return digest

    def finish(self, attributes: FileInfo | None = None) -> None:
        """fsync and rename into place — only if the name still refers to the file we wrote.

        ``attributes``: set its ``mode`` and ``mtime`` first, so the file appears with them.
        """
        self.file.flush()
        if attributes is not None:
            apply_attributes(cast(BinaryIO, self.file), attributes.mode, attributes.mtime)
        os.fsync(self.file.fileno())
        if not self._names(self.entry.part, os.fstat(self.file.fileno())):
            raise UpdlError(
                f"{self.target}: the download's temporary file was replaced by another "
                "file meanwhile; nothing was moved into place"
            )
        with _about(self.target):
            os.replace(self.entry.part, self.target.name, src_dir_fd=self._dir, dst_dir_fd=self._dir)
        self.done = True
        self.forget_ranges()
        self._store.forget_download(self._key, self.entry.part)

    def close(self) -> None:
        """Release the lock; an empty temporary file left by a failure is removed (if still ours)."""
        try:
            if not self.done and self.size() == 0 and self._names(self.entry.part, os.fstat(self.file.fileno())):
                os.unlink(self.entry.part, dir_fd=self._dir)
                self.forget_ranges()
                self._store.forget_download(self._key, self.entry.part)
        finally:
            self.file.close()
            os.close(self._dir)


class ResumableDownload:
    """Attempts at downloading ``name`` through ``part``; call :meth:`run` per attempt.

    ``size``: what the caller was told the file's size is (a listing, ``HEAD``);
    an answer announcing another size, or a body running past it, is refused.
    """

    def __init__(
        self,
        name: str,
        part: PartFile,
        open_body: OpenBody,
        report: ProgressCallback,
        size: int | None = None,
        preserve: bool = True,
        checksum: str = "md5",
    ) -> None:
        """``open_body(headers)`` sends the GET and returns the streaming response; ``preserve``:
        restore the recorded mode and mtime; ``checksum="sha256"`` also checks the file on disk
        against the server's SHA-256."""
        self._preserve = preserve
        self._checksum = checksum
        self._name = name
        self._part = part
        self._open_body = open_body
        self._report = report
        self._size = size

    def run(self, attempt: int) -> FileInfo:
        """Continue (or start) the download, verify the whole file, rename it into place."""
        part = self._part
        if part.read_ranges() is not None:
            part.restart()  # left by a parallel download: holes, not a prefix to continue
        offset = part.size()
        etag = part.etag if offset else None
        if offset and etag is None:
            part.restart()  # nothing proves which version these bytes belong to
            offset = 0
        try:
            response = self._open_body({"Range": f"bytes={offset}-", "If-Range": etag} if offset and etag else {})
        except RangeNotSatisfiableError:
            part.restart()  # the file on disk is not shorter than the file: start over
            offset = 0
            response = self._open_body({})
        with response:
            return self.receive(response, offset, attempt)

    def receive(self, response: requests.Response, offset: int, attempt: int) -> FileInfo:
        """Receive the answer to a GET from ``offset`` into the part file, verify, rename into place."""
        part = self._part
        total = expected_total(response, self._name, self._size)
        if response.status_code == 206:
            start = response.headers.get("Content-Range", "").partition(" ")[2].partition("-")[0]
            if start != str(offset):
                part.restart()
                raise ConnectionFailedError(
                    f"{self._name}: the server sent an unexpected range ({response.headers.get('Content-Range')})"
                )
        elif offset:
            part.restart()  # 200: the file changed since the temporary file was written
            offset = 0
        md5 = required_md5(response, self._name)
        part.remember(server_etag(response))
        digest = part.prefix_md5(offset)
        try:
            info = receive_verified(
                response,
                self._name,
                cast(BinaryIO, part.file),
                md5,
                total,
                self._report,
                attempt,
                offset=offset,
                prefix=digest,
            )
        except (ProtocolError, ChecksumMismatchError):
            # Bytes from a server that breaks the protocol, or that do not add up to the
            # file, are not worth keeping: the next attempt starts from 0.
            part.restart()
            raise
        finally:
            part.file.flush()  # what arrived stays for the next attempt
        self.finish(info)
        return info

    def finish(self, info: FileInfo) -> None:
        """Move the verified temporary file into place (with the recorded mode and mtime if
        ``preserve``), after reading its SHA-256 back from disk when ``checksum="sha256"``.
        Also the end of a parallel ranged download of the same file (:mod:`~updl.sdk.ranged`)."""
        if self._checksum == "sha256" and info.sha256 is not None:
            self._check_sha256_on_disk(info)
        self._part.finish(info if self._preserve else None)

    def _check_sha256_on_disk(self, info: FileInfo) -> None:
        """Read the finished temporary file back and compare its SHA-256 with the server's."""
        part = self._part
        on_disk = hash_file(part.file, ("sha256",), length=info.size)["sha256"].hexdigest()
        if on_disk != info.sha256:
            part.restart()
            raise ChecksumMismatchError(
                f"checksum mismatch (server: sha256 {info.sha256}, on disk: {on_disk})",
                expected=info.sha256,
                actual=on_disk,
            )


class StreamDownload:
    """Attempts at downloading ``name`` into a binary file object; call :meth:`run` per attempt.

    A seekable one is rewound and truncated for each attempt. Bytes already
    written to a pipe cannot be taken back: :meth:`retry_if` then retries only
    failures before the body (connection errors, 5xx, 429).
    """

    def __init__(
        self, name: str, fileobj: BinaryIO, open_body: BodyOpener, report: ProgressCallback, size: int | None = None
    ) -> None:
        self._name = name
        self._file = fileobj
        self._open_body = open_body
        self._report = report
        self._size = size
        try:
            self._start: int | None = fileobj.tell() if fileobj.seekable() else None
        except (AttributeError, OSError, ValueError):
            self._start = None

    @property
    def retry_if(self) -> Callable[[UpdlError], bool] | None:
        """Which retryable errors may be retried: all (None), or for a pipe those before the body."""
        if self._start is not None:
            return None
        return lambda error: not self._open_body.started

    def run(self, attempt: int) -> FileInfo:
        """Receive the whole file into the file object and verify it."""
        if self._start is not None:
            self._file.seek(self._start)
            self._file.truncate()
        with self._open_body() as response:
            md5 = required_md5(response, self._name)
            total = expected_total(response, self._name, self._size)
            return receive_verified(response, self._name, self._file, md5, total, self._report, attempt)


def required_md5(response: requests.Response, name: str) -> str:
    """The MD5 the server announces for the download; ``UpdlError`` if it sends none (nothing to verify)."""
    md5 = expected_md5(response)
    if md5 is None:
        raise UpdlError(
            f"{name}: the server sent neither Content-MD5 nor ETag; cannot verify the download", response=response
        )
    return md5


def receive_verified(
    response: requests.Response,
    name: str,
    sink: BinaryIO,
    md5: str,
    total: int | None,
    report: ProgressCallback,
    attempt: int,
    *,
    offset: int = 0,
    prefix: Any = None,
) -> FileInfo:
    """The one verify step of every download: stream the body into ``sink``, check length and MD5.

    ``offset`` bytes of the file are already there (a resumed download) and
    ``prefix`` is their MD5, which the new bytes continue. A body that stops
    short is a :class:`ConnectionFailedError` (retryable; resumable to a path),
    a whole file of other bytes a :class:`ChecksumMismatchError`.
    """

    def on_write(position: int) -> None:
        report(ProgressEvent(name, offset + position, total, attempt))

    writer = HashingWriter(sink, on_write, prefix)
    report(ProgressEvent(name, offset, total, attempt))
    receive_body(response, writer, name, None if total is None else total - offset)
    size = offset + writer.bytes_written
    if total is not None and size != total:
        raise ConnectionFailedError(f"the download of {name} stopped after {size} of {total} bytes", response=response)
    actual = writer.hexdigest()
    if actual != md5:
        raise ChecksumMismatchError(
            f"checksum mismatch (server: {md5}, received: {actual})", expected=md5, actual=actual, response=response
        )
    return file_info(response, name, size, actual, accessed=True)


class BodyOpener:
    """Sends a download's ``GET`` and returns the streaming answer; ``started``: the body began arriving."""

    def __init__(self, transport: Transport, name: str) -> None:
        self._transport = transport
        self._name = name
        self.started = False

    def __call__(
        self, headers: dict[str, str] | None = None, session: requests.Session | None = None
    ) -> requests.Response:
        self.started = False
        response = self._transport.request(
            "GET", file_path("files", self._name), stream=True, headers=headers, session=session
        )
        self.started = True
        return response

    def worker_session(self) -> contextlib.AbstractContextManager[requests.Session]:
        """A session of its own for a worker thread (:meth:`Transport.worker_session`)."""
        return self._transport.worker_session()


def download(
    transport: Transport,
    store: ResumeStore,
    name: str,
    dest: Destination,
    *,
    retrier: Retrier,
    on_progress: ProgressCallback | None = None,
    progress: bool = False,
    size: int | None = None,
    within: str | os.PathLike[str] | None = None,
    connections: int = 1,
    preserve: bool = True,
    checksum: str = "md5",
) -> FileInfo:
    """Download ``name`` into ``dest`` (a path, a directory, a binary file object); see ``Client.download``.

    ``connections`` > 1: a file of at least ``ranged.PARALLEL_MIN_SIZE`` to a path comes over that many
    ranged GETs at once (:mod:`~updl.sdk.ranged`)."""
    open_body = BodyOpener(transport, name)
    with reporting(on_progress, progress, name) as report:
        if not isinstance(dest, (str, os.PathLike)):
            stream = StreamDownload(name, dest, open_body, report, size)
            return retrier.run(stream.run, name, stream.retry_if)
        target = Path(dest)
        if target.is_dir() or os.fspath(dest).endswith(("/", os.sep)):
            target = target / name.rsplit("/", 1)[-1]
        key = DownloadKey.for_target(transport.base_url, name, target)
        part = PartFile(target, key, store, None if within is None else Path(within))
        try:
            single = ResumableDownload(name, part, open_body, report, size, preserve, checksum)
            if connections > 1:
                ranged = RangedDownload(name, part, open_body, single, report, connections, size)
                return retrier.run(ranged.run, name)
            return retrier.run(single.run, name)
        finally:
            part.close()
