"""The client: upload, download, list, info, delete — each verified by MD5.

Uploads are one pass per attempt: the multipart encoder pulls the file through
a :class:`~updl.sdk.hashing.HashingReader` and the ``md5`` field, sent last,
is read lazily from that reader once the file part is done. Downloads stream
into a temporary file next to the destination through a
:class:`~updl.sdk.hashing.HashingWriter` and are renamed into place only
after the MD5 and the length match.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, BinaryIO, TypeVar, cast

import requests
from requests_toolbelt import MultipartEncoder  # type: ignore[import-untyped]

from .config import Settings, load_settings
from .downloads import PartFile, ResumableDownload, receive_body
from .errors import ChecksumMismatchError, ConnectionFailedError, NotFoundError, ProtocolError, UpdlError
from .hashing import CHUNK_SIZE, HashingReader, HashingWriter
from .models import FileInfo
from .progress import ProgressCallback, ProgressEvent, TqdmProgress, tqdm_progress
from .resume import DownloadKey, ResumeStore
from .retry import RetryEvent, RetryPolicy, run_with_retries
from .headers import expected_md5 as _expected_md5
from .headers import expected_total, file_info, parse_count
from .transport import Transport, file_path, json_object
from .tus import TusUpload

__all__ = ["Client"]

Source = str | os.PathLike[str] | BinaryIO
Destination = str | os.PathLike[str] | BinaryIO
RetryCallback = Callable[[RetryEvent], None]
T = TypeVar("T")
logger = logging.getLogger("updl")
#: Pages without a file, one after another, after which a listing is taken to be looping.
MAX_EMPTY_PAGES = 100


class _DigestField:
    """The multipart ``md5`` value, read only after the file part has been read.

    requests-toolbelt sizes every part up front (``len`` = 32 here) and reads
    the parts in order, so when it gets to this one the reader has seen the
    whole file and its digest is final. It checks once more that the file did
    not change (an empty file has no last read to check on).
    """

    def __init__(self, reader: HashingReader) -> None:
        self._reader = reader
        self._value: bytes | None = None
        self._sent = 0

    def __len__(self) -> int:
        return 32 - self._sent

    def read(self, size: int | None = -1) -> bytes:
        if self._value is None:
            if self._reader.remaining:
                raise RuntimeError("md5 field read before the file part was complete")
            self._reader.check_unchanged()
            self._value = self._reader.hexdigest().encode("ascii")
        end = 32 if size is None or size < 0 else min(32, self._sent + size)
        chunk = self._value[self._sent:end]
        self._sent = end
        return chunk


@contextlib.contextmanager
def _open_source(source: Source) -> Iterator[tuple[BinaryIO, str | None]]:
    """Yield a seekable binary file positioned where the upload starts, and a default name."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        with path.open("rb") as f:
            yield f, path.name
        return
    raw_name = getattr(source, "name", None)
    default = os.path.basename(raw_name) if isinstance(raw_name, str) and not raw_name.startswith("<") else None
    try:
        seekable = source.seekable()
    except (AttributeError, ValueError):
        seekable = False
    if seekable:
        yield source, default
        return
    # A pipe cannot be rewound or measured, and the multipart body needs a length:
    # spool it to a temporary file once (hashing happens on the real upload pass),
    # which also makes retries possible.
    with tempfile.TemporaryFile() as spool:
        shutil.copyfileobj(source, spool, CHUNK_SIZE)
        spool.seek(0)
        yield cast(BinaryIO, spool), default


class Client:
    """A connection to one updl server.

    Unset arguments come from :func:`~updl.sdk.config.load_settings`
    (environment, config file, defaults); ``settings`` skips that entirely.
    ``retry`` defaults to ``RetryPolicy(retries=settings.retries)``; every
    request of every method is retried by that one policy's loop, and nowhere
    else. A ``session`` you pass is used as it is (mount no retrying adapter on
    it, or attempts multiply). ``sleep`` is what retries wait with (tests
    inject a recorder). ``on_retry`` receives the retries of calls that pass
    none of their own. Use as a context manager or call :meth:`close`.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        profile: str | None = None,
        settings: Settings | None = None,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: RetryCallback | None = None,
    ) -> None:
        if settings is None:
            settings = load_settings(url, token, profile)
        self.settings = settings
        self.retry = retry if retry is not None else RetryPolicy(retries=settings.retries)
        self._sleep = sleep
        self._on_retry = on_retry
        self._transport = Transport(settings, session)
        self._resume = ResumeStore()

    def __repr__(self) -> str:
        return f"Client(url={self.settings.url!r}, token_source={self.settings.token_source!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Release the HTTP connections."""
        self._transport.close()

    def _policy(self, retries: int | None) -> RetryPolicy:
        if retries is None:
            return self.retry
        return dataclasses.replace(self.retry, retries=retries)

    def _retrying(self, operation: Callable[[int], T], name: str, on_retry: RetryCallback | None,
                  policy: RetryPolicy | None = None,
                  retry_if: Callable[[UpdlError], bool] | None = None) -> T:
        """Run ``operation`` in the one retry loop, with this client's policy, sleep and ``on_retry``."""
        return run_with_retries(operation, policy or self.retry, name=name,
                                on_retry=on_retry or self._on_retry, sleep=self._sleep, retry_if=retry_if)

    @staticmethod
    def _reporter(on_progress: ProgressCallback | None, progress: bool,
                  desc: str) -> tuple[ProgressCallback, TqdmProgress | None]:
        bar = tqdm_progress(desc) if progress else None

        def report(event: ProgressEvent) -> None:
            if on_progress is not None:
                on_progress(event)
            if bar is not None:
                bar(event)

        return report, bar

    # -- upload ---------------------------------------------------------------------------

    def upload(
        self,
        source: Source,
        name: str | None = None,
        *,
        on_progress: ProgressCallback | None = None,
        on_retry: RetryCallback | None = None,
        retries: int | None = None,
        progress: bool = False,
        resumable_threshold: int | None = None,
    ) -> FileInfo:
        """Upload a file (path or binary file object) as ``name`` (default: the file's base name).

        The file is read once per attempt and hashed on the way; the server
        checks the MD5 before keeping anything. Retryable failures (checksum
        mismatch, connection errors, 5xx, 429) start over with a fresh body. A
        file object is uploaded from its current position. Returns the stored
        file's info. A file that changes while it is read (size, mtime, ctime
        of its descriptor) is not stored: :class:`~updl.sdk.errors.SourceChangedError`,
        retried like the others (the retry reads it again).

        A path of at least ``resumable_threshold`` bytes (default
        ``settings.resumable_threshold``, 64 MiB; 0: always) goes over tus in
        checksummed chunks and resumes where it stopped, even in a later
        process (see :mod:`updl.sdk.tus`).
        """
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            threshold = (self.settings.resumable_threshold if resumable_threshold is None
                         else resumable_threshold)
            if path.is_file() and path.stat().st_size >= threshold:
                return self._upload_resumable(path, name or path.name, on_progress, on_retry,
                                              retries, progress)
        with _open_source(source) as (fileobj, default_name):
            name = name or default_name
            if not name:
                raise ValueError("name is required when the source has no file name")
            start = fileobj.tell()
            report, bar = self._reporter(on_progress, progress, name)
            try:
                def attempt(number: int) -> FileInfo:
                    fileobj.seek(start)
                    return self._upload_once(fileobj, name, number, report)

                return self._retrying(attempt, name, on_retry, self._policy(retries))
            finally:
                if bar is not None:
                    bar.close()

    def _upload_resumable(self, path: Path, name: str, on_progress: ProgressCallback | None,
                          on_retry: RetryCallback | None, retries: int | None,
                          progress: bool) -> FileInfo:
        report, bar = self._reporter(on_progress, progress, name)
        try:
            upload = TusUpload(self._transport, self._resume, path, name,
                               self.settings.resumable_chunk_size, report)
            return self._retrying(upload.run, name, on_retry, self._policy(retries))
        finally:
            if bar is not None:
                bar.close()

    def _upload_once(self, fileobj: BinaryIO, name: str, attempt: int,
                     report: ProgressCallback) -> FileInfo:
        reader: HashingReader
        total: int | None = None

        def on_read(position: int) -> None:
            report(ProgressEvent(name, position, total, attempt))

        reader = HashingReader(fileobj, on_read)
        total = reader.size
        report(ProgressEvent(name, 0, total, attempt))
        # A fresh encoder per attempt: an encoder cannot be rewound.
        encoder = MultipartEncoder(fields=[
            ("name", name),
            ("file", (os.path.basename(name) or name, reader, "application/octet-stream")),
            ("md5", _DigestField(reader)),  # last: its value exists only once the file is read
        ])
        response = self._transport.request(
            "POST", "/upload", data=encoder, headers={"Content-Type": encoder.content_type},
        )
        info = FileInfo.from_json(json_object(response))
        sent = reader.hexdigest()
        if info.md5 != sent:
            raise ChecksumMismatchError(
                f"checksum mismatch (the server stored md5 {info.md5}, the client sent {sent})",
                expected=sent, actual=info.md5, response=response,
            )
        return info

    # -- download -------------------------------------------------------------------------

    def download(
        self,
        name: str,
        dest: Destination,
        *,
        on_progress: ProgressCallback | None = None,
        on_retry: RetryCallback | None = None,
        retries: int | None = None,
        progress: bool = False,
        size: int | None = None,
        within: str | os.PathLike[str] | None = None,
    ) -> FileInfo:
        """Download ``name`` into ``dest`` (a path, a directory, or a binary file object).

        For a path the bytes go to a hidden temporary file beside it
        (``.<name>.updl-<random>.part``), which is renamed into place only when
        the whole file's MD5 and length match the server's, so a partial or
        corrupt file never appears at ``dest``; missing parent directories are
        created. An interrupted download leaves the temporary file and the next
        call resumes it (``Range`` + ``If-Range``; see :mod:`updl.sdk.downloads`).
        An existing directory, or a path ending in ``/``, receives
        ``<dir>/<basename of name>``.
        A file object receives the bytes as they arrive and the check happens
        at the end (a seekable one is rewound and truncated on retry).

        ``size`` (e.g. from :meth:`list`): the download fails with
        :class:`~updl.sdk.errors.ProtocolError` rather than write more, or when
        the server announces another size. Without it the size the server
        announces is the limit. ``within``: refuse (``UnsafeNameError``) to
        write anywhere but inside that directory, symlinks resolved.

        The returned info comes from the response headers: ``created`` from
        ``Last-Modified`` (second precision), ``last_accessed`` from ``Date``.
        """
        report, bar = self._reporter(on_progress, progress, name)
        body_started = False
        retry_if: Callable[[UpdlError], bool] | None = None  # a path or seekable object: retry all

        def before_body(error: UpdlError) -> bool:
            return not body_started

        def open_body(headers: dict[str, str] | None = None) -> requests.Response:
            nonlocal body_started
            body_started = False
            response = self._transport.request("GET", file_path("files", name), stream=True,
                                               headers=headers)
            body_started = True
            return response

        policy = self._policy(retries)
        part: PartFile | None = None
        attempt: Callable[[int], FileInfo]
        if isinstance(dest, (str, os.PathLike)):
            target = Path(dest)
            if target.is_dir() or os.fspath(dest).endswith(("/", os.sep)):
                target = target / name.rsplit("/", 1)[-1]
            key = DownloadKey.for_target(self._transport.base_url, name, target)
            part = PartFile(target, key, self._resume, None if within is None else Path(within))
            attempt = ResumableDownload(name, part, open_body, report, size).run
        else:
            fileobj = dest
            try:
                start: int | None = fileobj.tell() if fileobj.seekable() else None
            except (AttributeError, OSError, ValueError):
                start = None
            if start is None:
                # Bytes already written to a pipe cannot be taken back: retry only failures
                # before the body (connection errors, 5xx, 429).
                retry_if = before_body

            def attempt(number: int) -> FileInfo:  # type: ignore[misc]
                if start is not None:
                    fileobj.seek(start)
                    fileobj.truncate()
                with open_body() as response:
                    return self._receive(response, name, fileobj, number, report, size)

        try:
            return self._retrying(attempt, name, on_retry, policy, retry_if)
        finally:
            if part is not None:
                part.close()
            if bar is not None:
                bar.close()

    def _receive(self, response: requests.Response, name: str, fileobj: IO[bytes],
                 attempt: int, report: ProgressCallback, size: int | None = None) -> FileInfo:
        """Stream the body into ``fileobj`` and verify length and MD5 against the headers."""
        expected_md5 = _expected_md5(response)
        if expected_md5 is None:
            raise UpdlError(f"{name}: the server sent neither Content-MD5 nor ETag; cannot verify the download",
                            response=response)
        expected_size = expected_total(response, name, size)

        def on_write(position: int) -> None:
            report(ProgressEvent(name, position, expected_size, attempt))

        writer = HashingWriter(cast(BinaryIO, fileobj), on_write)
        report(ProgressEvent(name, 0, expected_size, attempt))
        receive_body(response, writer, name, expected_size)
        if expected_size is not None and writer.bytes_written != expected_size:
            raise ConnectionFailedError(
                f"the download of {name} stopped after {writer.bytes_written} of {expected_size} bytes",
                response=response,
            )
        actual = writer.hexdigest()
        if actual != expected_md5:
            raise ChecksumMismatchError(
                f"checksum mismatch (server: {expected_md5}, received: {actual})",
                expected=expected_md5, actual=actual, response=response,
            )
        return file_info(response, name, writer.bytes_written, actual, accessed=True)

    # -- listing, info, delete ------------------------------------------------------------

    def iter_files(self, prefix: str | None = None, *,
                   on_retry: RetryCallback | None = None) -> Iterator[FileInfo]:
        """Yield the caller's files ordered by name (optionally those starting with ``prefix``), page by page.

        A failed page is retried on its own; the pages before it are not fetched again.
        A server that repeats a cursor or a page, or sends page after page of
        nothing, gets a :class:`~updl.sdk.errors.ProtocolError` instead of an endless loop.
        """
        cursor: str | None = None
        what = f"listing {prefix}" if prefix else "listing"
        seen_cursors: set[str] = set()
        first_names: set[str] = set()  # in a true listing every name comes once, so every page starts anew
        empty_pages = 0
        while True:
            params = {key: value for key, value in (("prefix", prefix), ("cursor", cursor)) if value}
            page = self._retrying(
                lambda _: json_object(self._transport.request("GET", "/files", params=params)), what, on_retry)
            files = [FileInfo.from_json(item) for item in page.get("files", [])]
            if files and files[0].name in first_names:
                raise ProtocolError(f"the server's listing repeated a page (starting at {files[0].name!r}); "
                                    "stopped instead of looping")
            first_names.update(f.name for f in files[:1])
            empty_pages = 0 if files else empty_pages + 1
            yield from files
            cursor = page.get("next_cursor")
            if cursor is not None and not isinstance(cursor, str):
                raise ProtocolError(f"the server's listing sent a cursor that is not a string: {cursor!r:.40}")
            if not cursor:
                return
            if cursor in seen_cursors:
                raise ProtocolError(f"the server's listing repeated the cursor {cursor!r}; "
                                    "stopped instead of looping")
            if empty_pages >= MAX_EMPTY_PAGES:
                raise ProtocolError(f"the server's listing sent {empty_pages} empty pages in a row; "
                                    "stopped instead of looping")
            seen_cursors.add(cursor)

    def list(self, prefix: str | None = None, *, on_retry: RetryCallback | None = None) -> list[FileInfo]:
        """All of the caller's files (optionally those starting with ``prefix``), ordered by name."""
        return [*self.iter_files(prefix, on_retry=on_retry)]

    def info(self, name: str, *, on_retry: RetryCallback | None = None) -> FileInfo:
        """Info about one file; :class:`~updl.sdk.errors.NotFoundError` if there is none."""
        return self._retrying(
            lambda _: FileInfo.from_json(json_object(self._transport.request("GET", file_path("info", name)))),
            name, on_retry)

    def delete(self, name: str, *, on_retry: RetryCallback | None = None) -> None:
        """Delete a file; :class:`~updl.sdk.errors.NotFoundError` if there is none.

        A 404 to a *retried* DELETE counts as success: the attempt that failed
        may have deleted the file before its answer was lost, and either way
        the file is gone.
        """
        def attempt(number: int) -> None:
            try:
                self._transport.request("DELETE", file_path("files", name)).close()
            except NotFoundError:
                if number == 1:
                    raise
                logger.info("%s: not found on attempt %d; an earlier attempt deleted it", name, number)

        self._retrying(attempt, name, on_retry)


    # -- batch helpers (added for batches: skip-existing, one client per worker thread) ---

    def head(self, name: str, *, on_retry: RetryCallback | None = None) -> FileInfo | None:
        """What the server has under ``name`` (``HEAD /files/{name}``: size and ETag MD5), or None if nothing.

        ``created`` comes from ``Last-Modified``. Sends no body and downloads nothing.
        """
        try:
            response = self._retrying(
                lambda _: self._transport.request("HEAD", file_path("files", name)), name, on_retry)
        except NotFoundError:
            return None
        with response:
            md5 = _expected_md5(response)
            length = parse_count(response.headers.get("Content-Length"))
            if md5 is None or length is None:
                raise UpdlError(f"{name}: the server's HEAD answer has no usable ETag or Content-Length",
                                response=response)
            return file_info(response, name, length, md5)

    def clone(self) -> Client:
        """A new client with the same settings, retry policy, sleep and ``on_retry``, and its own connections.

        ``requests.Session`` is not guaranteed thread-safe: give each worker thread its own clone.
        """
        return Client(settings=self.settings, retry=self.retry, sleep=self._sleep, on_retry=self._on_retry)
