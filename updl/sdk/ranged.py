"""Parallel ranged downloads of one file into its temporary file (like ``aria2c -x``).

On a long link one TCP stream is limited by its window (``window / RTT``:
4 MiB at 50 ms is ~80 MiB/s), so a big file is fetched over ``connections``
streams at once. The first ``GET`` asks for ``bytes=0-``; its answer tells
the size, the ETag and the MD5. A 200 (a server that refuses ranges), an
answer without an ETag, a file under ``PARALLEL_MIN_SIZE``, or a first answer
that came back within ``PARALLEL_MIN_RTT`` (a short link, where one stream is
not window-bound) is simply received as one stream (:class:`~updl.sdk.downloads.ResumableDownload`).

**Pieces from a queue.** Otherwise the file is cut into consecutive pieces of
``PIECE_SIZE`` and each of ``connections`` workers takes the lowest piece
nobody has yet, fetches it (``Range`` + ``If-Range: <ETag>``), writes it at its
offset (``os.pwrite``) and takes the next. The first answer carries piece 0
(read up to its end, then closed). Each worker keeps its own session, so its
pieces reuse one keep-alive connection instead of a handshake each. Because
the pieces in flight are always the lowest ones, the complete prefix of the
file advances with the download (one contiguous range per connection left
three quarters of the file to hash after the first range was in). Everything
goes into the same ``.part`` file as a single-stream download, under the same
lock and with the same rename.

**Resumable.** Which bytes are on disk is recorded next to the ``.part`` (a
``.ranges`` JSON file through the same directory descriptor, written every
``SAVE_EVERY`` bytes and when the attempt ends): the merged byte intervals
received, with the ETag and the MD5 of the version they belong to. A retry,
or a rerun, cuts the holes into pieces again and fetches only those, with
``If-Range``; an answer that is not the expected 206 (the file changed on the
server) empties the ``.part`` and starts over. A record in another format
(an older updl's one range per connection) is discarded with the ``.part``:
the next attempt starts from 0.

**Verified on the whole file on disk.** Pieces arrive out of order, so the
MD5 cannot follow a socket. A hasher thread follows the *contiguous prefix*
instead: it reads back from the file (from the page cache, just written) the
bytes up to where the lowest unfinished piece has got, while the downloads go
on, so hashing overlaps the transfer and the file is hashed in order exactly
once; at the end only the last few pieces are left to hash. Only when the
digest equals the server's MD5 is the file renamed into place; on a mismatch
the ``.part`` is emptied and the next attempt starts from 0.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable
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
    from .downloads import BodyOpener, PartFile, ResumableDownload

__all__ = ["MAX_CONNECTIONS", "PARALLEL_MIN_SIZE", "PIECE_SIZE", "RangedDownload"]

MIB = 1024 * 1024
PARALLEL_MIN_SIZE = 64 * MIB  # smaller files gain less than the extra requests cost
#: Seconds from sending the first GET to its answer's headers (``requests``' ``elapsed``) below
#: which the link is short: one stream is not window-bound there (4 MiB / 10 ms is 400 MiB/s,
#: more than the MD5 keeps up with), and on loopback 4 streams took 1.43 s to one's 0.88 s
#: (docs/benchmarks.md). Above it, as at 20 and 50 ms, the pieces win.
PARALLEL_MIN_RTT = 0.010
MAX_CONNECTIONS = 16
# Per ranged GET. Smaller leaves less to hash at the end; each piece costs a round trip
# (request to first byte) on its connection: 16 MiB at ~80 MiB/s per stream is 0.2 s against 50 ms.
PIECE_SIZE = 16 * MIB
READ_SIZE = MIB  # bytes per socket read and per pwrite
SAVE_EVERY = 32 * MIB  # how much a crash of the process can make a rerun fetch again
HASH_READ = 4 * MIB
FORMAT = 2  # of the ranges record: {"format", "etag", "md5", "size", "have": [[start, end], ...]}

Interval = tuple[int, int]


@dataclass
class _Piece:
    """Bytes ``start`` to ``end`` (exclusive) of the file; ``done``: received up to here."""

    start: int
    end: int
    done: int

    @property
    def complete(self) -> bool:
        return self.done >= self.end


class RangedDownload:
    """Attempts at downloading ``name`` through ``part`` over ``connections`` ranged GETs at a time.

    ``single`` is the one-stream download of the same part file, used when the
    server answers the first request with the whole file or the file is small.
    """

    def __init__(
        self,
        name: str,
        part: PartFile,
        open_body: BodyOpener,
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
        self._had: list[Interval] = []  # on disk when the attempt began
        self._pieces: list[_Piece] = []  # the holes, in order; [: self._next] handed out
        self._next = 0
        self._cursor = 0  # every piece before it is complete
        self._received = 0
        self._saved_at = 0
        self._total = 0
        self._attempt = 1

    def run(self, attempt: int) -> FileInfo:
        """Continue (or start) the download, verify the whole file, rename it into place."""
        self._attempt = attempt
        part = self._part
        state = part.read_ranges()
        if state is not None and (part.etag is None or not _valid(state) or state["etag"] != part.etag):
            part.restart()  # another format, or another version than the bytes': worthless
            state = None
        if state is None and part.size():
            return self._single.run(attempt)  # an earlier single-stream attempt: continue it as it was
        headers = {"Range": "bytes=0-"}
        start = 0
        if state is not None:  # the size is known: ask for the lowest missing piece only (byte 0 if none)
            holes = _split(_holes(state["have"], state["size"]), PIECE_SIZE)[:1] or [(0, 1)]
            start = holes[0][0]
            headers = {"Range": f"bytes={start}-{holes[0][1] - 1}", "If-Range": str(state["etag"])}
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
                state = {"format": FORMAT, "etag": part.etag, "md5": md5, "size": total, "have": []}
                part.write_ranges(state)
            elif state["md5"] != md5 or state["size"] != total or not _starts_at(response, start):
                part.restart()
                raise ConnectionFailedError(f"{self._name}: the file changed on the server; starting over")
            return self._fetch(response, state, attempt)

    def _worth_splitting(self, response: requests.Response) -> bool:
        total = expected_total(response, self._name, self._size)
        return (
            total is not None
            and total >= PARALLEL_MIN_SIZE
            and self._connections > 1
            and server_etag(response) is not None  # If-Range needs it
            and response.elapsed.total_seconds() >= PARALLEL_MIN_RTT  # a long link (see above)
        )

    def _fetch(self, first: requests.Response, state: dict[str, Any], attempt: int) -> FileInfo:
        """Receive every missing piece (``first`` answers the lowest) and check the whole file."""
        part = self._part
        self._total = int(state["size"])
        self._had = _merged(tuple(i) for i in state["have"])
        self._pieces = [_Piece(s, e, s) for s, e in _split(_holes(self._had, self._total), PIECE_SIZE)]
        self._next = self._cursor = 0
        self._received = self._saved_at = sum(e - s for s, e in self._had)
        self._stop.clear()
        self._report(ProgressEvent(self._name, self._received, self._total, attempt))
        fd = part.file.fileno()
        part.file.flush()
        workers = min(self._connections, len(self._pieces))
        lowest = self._take()  # the first answer's, before any worker can take it
        with ThreadPoolExecutor(workers + 1, thread_name_prefix="updl-range") as pool:
            hasher = pool.submit(self._hash, fd)
            futures: list[Future[None]] = []
            for n in range(workers):
                futures.append(pool.submit(self._work, fd, state, (lowest, first) if n == 0 and lowest else None))
            error = _first_error(futures, self._stop)
            with self._lock:
                self._lock.notify_all()  # wake the hasher: it stops, or finishes
        try:
            digest = hasher.result()
        except ProtocolError:
            part.restart()  # the record promised bytes the file does not have
            raise
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

    def _work(self, fd: int, state: dict[str, Any], first: tuple[_Piece, requests.Response] | None) -> None:
        """One connection: take the lowest piece nobody has, receive it, again until none are left.

        ``first``: the lowest piece and the open-ended first answer, which carries it.
        """
        if first is not None:
            lowest, opened = first
            self._copy(fd, lowest, opened, state, open_ended=True)
            self._check(lowest)
        with self._open_body.worker_session() as session:  # one keep-alive connection for all its pieces
            while (piece := self._take()) is not None:
                response = self._open_body(
                    {"Range": f"bytes={piece.done}-{piece.end - 1}", "If-Range": str(state["etag"])}, session
                )
                with response:
                    if response.status_code != 206 or not _starts_at(response, piece.done):
                        self._part.restart()  # the file changed on the server: nothing here is reusable
                        raise ConnectionFailedError(
                            f"{self._name}: the server answered range {piece.done}- with "
                            f"{response.status_code} {response.headers.get('Content-Range', '')}; starting over"
                        )
                    self._copy(fd, piece, response, state)
                self._check(piece)

    def _take(self) -> _Piece | None:
        """The lowest piece not handed out yet; None when there is none or the attempt is stopping."""
        with self._lock:
            if self._stop.is_set() or self._next >= len(self._pieces):
                return None
            self._next += 1
            return self._pieces[self._next - 1]

    def _check(self, piece: _Piece) -> None:
        if not piece.complete and not self._stop.is_set():  # stopped: another piece failed, it says why
            raise ConnectionFailedError(
                f"the download of {self._name} stopped after {piece.done - piece.start} "
                f"of {piece.end - piece.start} bytes of a range"
            )

    def _copy(
        self, fd: int, piece: _Piece, response: requests.Response, state: dict[str, Any], open_ended: bool = False
    ) -> None:
        """Write the body at the piece's offset until the piece is complete.

        A body of exactly the piece is read to its end, so that the connection goes back to the
        session for the next piece; the rest of an ``open_ended`` one (the first answer) is left.
        """
        try:
            for chunk in response.iter_content(READ_SIZE):
                if self._stop.is_set():
                    return
                data = chunk[: piece.end - piece.done]
                written = 0
                while written < len(data):
                    written += os.pwrite(fd, memoryview(data)[written:], piece.done + written)
                with self._lock:
                    piece.done += len(data)
                    self._received += len(data)
                    self._report(ProgressEvent(self._name, self._received, self._total, self._attempt))
                    self._lock.notify_all()
                self._save(state)
                if len(data) < len(chunk) or (open_ended and piece.complete):
                    return
        except requests.RequestException as exc:
            raise translate(exc) from exc

    def _frontier(self) -> int:
        """How far the file is complete from byte 0 (call under the lock)."""
        while self._cursor < len(self._pieces) and self._pieces[self._cursor].complete:
            self._cursor += 1
        return self._pieces[self._cursor].done if self._cursor < len(self._pieces) else self._total

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

    def _have(self) -> list[Interval]:
        """The byte intervals on disk (call under the lock): the complete prefix, what the attempt
        began with beyond it, and the pieces under way."""
        prefix = self._pieces[self._cursor].start if self._cursor < len(self._pieces) else self._total
        under_way = [(p.start, p.done) for p in self._pieces[self._cursor : self._next] if p.done > p.start]
        return _merged([(0, prefix), *(i for i in self._had if i[1] > prefix), *under_way])

    def _save(self, state: dict[str, Any], force: bool = False) -> None:
        """Record which bytes are on disk (every ``SAVE_EVERY`` bytes, or now if ``force``)."""
        with self._lock:
            if not force and self._received - self._saved_at < SAVE_EVERY:
                return
            self._saved_at = self._received
        with self._saving:  # one writer at a time; a restarted part (etag gone) is not recorded again
            with self._lock:
                self._frontier()
                state["have"] = [list(i) for i in self._have()]
            if self._part.etag == state["etag"]:
                self._part.write_ranges(state)


def _valid(state: dict[str, Any]) -> bool:
    """Whether ``state`` is a ranges record of this format with sane intervals."""
    have, size = state.get("have"), state.get("size")
    return (
        state.get("format") == FORMAT
        and isinstance(state.get("etag"), str)
        and isinstance(state.get("md5"), str)
        and type(size) is int
        and isinstance(have, list)
        and all(
            isinstance(i, list) and len(i) == 2 and all(type(x) is int for x in i) and 0 <= i[0] <= i[1] <= size
            for i in have
        )
    )


def _merged(intervals: Iterable[Interval]) -> list[Interval]:
    """The intervals sorted, with overlapping or touching ones joined and empty ones dropped."""
    merged: list[Interval] = []
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _holes(have: Iterable[Iterable[int]], size: int) -> list[Interval]:
    """What of ``[0, size)`` the intervals ``have`` leave out, in order."""
    holes: list[Interval] = []
    position = 0
    for start, end in _merged((int(s), int(e)) for s, e in have):
        if start > position:
            holes.append((position, start))
        position = max(position, end)
    if position < size:
        holes.append((position, size))
    return holes


def _split(holes: list[Interval], piece: int) -> list[Interval]:
    """The holes cut into consecutive pieces of at most ``piece`` bytes."""
    return [(s, min(end, s + piece)) for start, end in holes for s in range(start, end, piece)]


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
