"""Parallel ranged downloads of one file into its temporary file (like ``aria2c -x``).

On a long link one TCP stream is limited by its window (``window / RTT``:
4 MiB at 50 ms is ~80 MiB/s), so a big file is fetched over ``connections``
streams at once. The first ``GET`` asks for ``bytes=0-``; its answer tells
the size, the ETag and the MD5. A 200 (a server that refuses ranges) or a
file under ``PARALLEL_MIN_SIZE`` is simply received as one stream
(:class:`~updl.sdk.downloads.ResumableDownload`). Otherwise the file is cut
into ``connections`` contiguous ranges; the first answer already carries the
first range (read up to that range's end, then closed) and one more ``GET``
per range (``Range`` + ``If-Range: <ETag>``) carries each of the others. Each
range is written at its offset (``os.pwrite``) into the same ``.part`` file as
a single-stream download, under the same lock and with the same rename.

**Resumable.** How far each range got is recorded next to the ``.part`` (a
``.ranges`` JSON file through the same directory descriptor, written every
``SAVE_EVERY`` bytes per range and when the attempt ends), with the ETag and
the MD5 of the version the bytes belong to. A retry, or a rerun, continues
every range from there with ``If-Range``; an answer that is not the expected
206 (the file changed on the server) empties the ``.part`` and starts over.

**Verified on the whole file on disk.** Ranges arrive out of order, so the
MD5 cannot follow the socket. A hasher thread follows the *contiguous prefix*
instead: it reads back from the file (from the page cache, just written) the
bytes up to where the first unfinished range has got, while the downloads go
on, so hashing overlaps the transfer and the file is hashed in order exactly
once. Only when the digest equals the server's MD5 is the file renamed into
place; on a mismatch the ``.part`` is emptied and the next attempt starts
from 0.
"""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests

from .errors import (
    ChecksumMismatchError,
    ConnectionFailedError,
    ProtocolError,
    RangeNotSatisfiableError,
    UpdlError,
)
from .headers import expected_md5, expected_total, file_info, server_etag
from .models import FileInfo
from .progress import ProgressCallback, ProgressEvent
from .transport import translate

if TYPE_CHECKING:  # downloads.py imports this module
    from .downloads import OpenBody, PartFile, ResumableDownload

__all__ = ["MAX_CONNECTIONS", "PARALLEL_MIN_SIZE", "RangedDownload"]

MIB = 1024 * 1024
PARALLEL_MIN_SIZE = 64 * MIB  # smaller files gain less than the extra requests cost
MAX_CONNECTIONS = 16
PIECE = MIB  # bytes per socket read and per pwrite
SAVE_EVERY = 32 * MIB  # per range: how much a crash of the process can make a rerun fetch again
HASH_READ = 4 * MIB


@dataclass
class _Range:
    """Bytes ``start`` to ``end`` (exclusive) of the file; ``done``: received up to here."""

    start: int
    end: int
    done: int

    @property
    def complete(self) -> bool:
        return self.done >= self.end


class RangedDownload:
    """Attempts at downloading ``name`` through ``part`` over ``connections`` ranged GETs.

    ``single`` is the one-stream download of the same part file, used when the
    server answers the first request with the whole file or the file is small.
    """

    def __init__(
        self,
        name: str,
        part: PartFile,
        open_body: OpenBody,
        single: ResumableDownload,
        report: ProgressCallback,
        connections: int,
        size: int | None = None,
    ) -> None:
        self._name = name
        self._part = part
        self._open_body = open_body
        self._single = single
        self._report = report
        self._connections = max(1, min(connections, MAX_CONNECTIONS))
        self._size = size
        self._lock = threading.Condition()
        self._saving = threading.Lock()
        self._stop = threading.Event()
        self._ranges: list[_Range] = []
        self._saved: list[int] = []
        self._received = 0
        self._total = 0
        self._attempt = 1

    def run(self, attempt: int) -> FileInfo:
        """Continue (or start) the ranges, verify the whole file, rename it into place."""
        self._attempt = attempt
        part = self._part
        state = part.read_ranges()
        if state is not None and (part.etag is None or state.get("etag") != part.etag):
            part.restart()  # a record that does not match the bytes' version is worthless
            state = None
        if state is None and part.size():
            return self._single.run(attempt)  # an earlier single-stream attempt: continue it as it was
        first = None if state is None else next((r for r in _ranges(state) if r[2] < r[1]), None)
        start = 0 if first is None else first[2]
        headers = {"Range": f"bytes={start}-"}
        if state is not None:
            headers["If-Range"] = str(state["etag"])
        try:
            response = self._open_body(headers)
        except RangeNotSatisfiableError:  # an empty file has no byte 0
            part.restart()
            state = None
            response = self._open_body({})
        with response:
            if response.status_code != 206 or (state is None and not self._worth_splitting(response)):
                if state is not None:
                    part.restart()  # the file changed on the server (If-Range): one stream from 0
                return self._single.receive(response, 0, attempt)
            total = expected_total(response, self._name, self._size)
            md5 = expected_md5(response)
            if total is None or md5 is None:
                raise UpdlError(f"{self._name}: the server's 206 answer names no size or MD5", response=response)
            if state is None:
                part.remember(server_etag(response))
                state = {"etag": part.etag, "md5": md5, "size": total, "ranges": self._split(total)}
                part.write_ranges(state)
            elif state.get("md5") != md5 or state.get("size") != total or not _starts_at(response, start):
                part.restart()
                raise ConnectionFailedError(f"{self._name}: the file changed on the server; starting over")
            return self._fetch(response, state, attempt)

    def _worth_splitting(self, response: requests.Response) -> bool:
        total = expected_total(response, self._name, self._size)
        return total is not None and total >= PARALLEL_MIN_SIZE and self._connections > 1

    def _split(self, total: int) -> list[list[int]]:
        step = -(-total // self._connections)
        return [[start, min(total, start + step), start] for start in range(0, total, step)]

    def _fetch(self, first: requests.Response, state: dict[str, Any], attempt: int) -> FileInfo:
        """Receive every unfinished range (``first`` answers the first of them) and check the whole file."""
        part = self._part
        self._ranges = [_Range(*r) for r in _ranges(state)]
        self._saved = [r.done for r in self._ranges]
        self._total = int(state["size"])
        self._received = sum(r.done - r.start for r in self._ranges)
        self._stop.clear()
        self._report(ProgressEvent(self._name, self._received, self._total, attempt))
        fd = part.file.fileno()
        part.file.flush()
        pending = [i for i, r in enumerate(self._ranges) if not r.complete]
        with ThreadPoolExecutor(len(pending) + 1, thread_name_prefix="updl-range") as pool:
            hasher = pool.submit(self._hash, fd)
            workers: list[Future[None]] = []
            for n, index in enumerate(pending):
                workers.append(pool.submit(self._receive_range, fd, index, first if n == 0 else None, state))
            error = _first_error(workers, self._stop)
            with self._lock:
                self._lock.notify_all()  # wake the hasher: it stops, or finishes
        digest = hasher.result()
        self._save(state, force=True)
        if error is not None:
            raise error
        if digest != state["md5"]:
            part.restart()
            raise ChecksumMismatchError(
                f"checksum mismatch (server: {state['md5']}, received: {digest})",
                expected=str(state["md5"]),
                actual=digest,
            )
        info = file_info(first, self._name, self._total, str(digest), accessed=True)
        self._single.finish(info)
        return info

    def _receive_range(self, fd: int, index: int, response: requests.Response | None, state: dict[str, Any]) -> None:
        """Receive range ``index`` (from ``response`` if given, else its own GET) into the file."""
        r = self._ranges[index]
        if response is None:
            response = self._open_body({"Range": f"bytes={r.done}-{r.end - 1}", "If-Range": str(state["etag"])})
            with response:
                if response.status_code != 206 or not _starts_at(response, r.done):
                    self._part.restart()  # the file changed on the server: nothing here is reusable
                    raise ConnectionFailedError(
                        f"{self._name}: the server answered range {r.done}- with "
                        f"{response.status_code} {response.headers.get('Content-Range', '')}; starting over"
                    )
                self._copy(fd, r, response, state)
        else:
            self._copy(fd, r, response, state)  # the first answer, open-ended: read up to the range's end
        if not r.complete and not self._stop.is_set():  # stopped: another range failed, it says why
            raise ConnectionFailedError(
                f"the download of {self._name} stopped after {r.done - r.start} of {r.end - r.start} bytes of a range"
            )

    def _copy(self, fd: int, r: _Range, response: requests.Response, state: dict[str, Any]) -> None:
        try:
            for chunk in response.iter_content(PIECE):
                if self._stop.is_set():
                    return
                room = r.end - r.done
                data = chunk[:room]
                written = 0
                while written < len(data):
                    written += os.pwrite(fd, memoryview(data)[written:], r.done + written)
                with self._lock:
                    r.done += len(data)
                    self._received += len(data)
                    self._report(ProgressEvent(self._name, self._received, self._total, self._attempt))
                    self._lock.notify_all()
                self._save(state)
                if r.complete:
                    return
        except requests.RequestException as exc:
            raise translate(exc) from exc

    def _frontier(self) -> int:
        """How far the file is complete from byte 0 (call under the lock)."""
        reached = 0
        for r in self._ranges:
            reached = r.done
            if not r.complete:
                break
        return reached

    def _hash(self, fd: int) -> str | None:
        """MD5 of the file, read back in order as the contiguous prefix grows; None if stopped."""
        digest = hashlib.md5()
        position = 0
        while position < self._total:
            with self._lock:
                while self._frontier() <= position and not self._stop.is_set():
                    self._lock.wait(1.0)
                if self._stop.is_set():
                    return None
                reached = self._frontier()
            while position < reached:
                data = os.pread(fd, min(HASH_READ, reached - position), position)
                if not data:
                    raise ProtocolError(f"{self._name}: the temporary file is shorter than what was written")
                digest.update(data)
                position += len(data)
        return digest.hexdigest()

    def _save(self, state: dict[str, Any], force: bool = False) -> None:
        """Record how far each range got (every ``SAVE_EVERY`` bytes of a range, or now if ``force``)."""
        with self._lock:
            dones = [r.done for r in self._ranges]
            if not force and all(d - s < SAVE_EVERY for d, s in zip(dones, self._saved, strict=True)):
                return
            self._saved = dones
        with self._saving:  # one writer at a time; a restarted part (etag gone) is not recorded again
            state["ranges"] = [[r.start, r.end, d] for r, d in zip(self._ranges, dones, strict=True)]
            if self._part.etag == state["etag"]:
                self._part.write_ranges(state)


def _ranges(state: dict[str, Any]) -> list[list[int]]:
    return [[int(x) for x in r] for r in state.get("ranges", [])]


def _starts_at(response: requests.Response, offset: int) -> bool:
    return response.headers.get("Content-Range", "").partition(" ")[2].partition("-")[0] == str(offset)


def _first_error(workers: list[Future[None]], stop: threading.Event) -> BaseException | None:
    """Wait for every worker; the first failure, after which the others are told to stop."""
    done, pending = wait(workers, return_when=FIRST_EXCEPTION)
    failed = next((f for f in done if f.exception() is not None), None)
    if failed is None:
        return None
    stop.set()
    wait(pending)
    return failed.exception()
