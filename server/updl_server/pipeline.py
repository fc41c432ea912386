"""Moving received bytes to storage off the event loop, in order, hashing on the way.

Both upload paths (``POST``/``PUT`` in :mod:`receive`, tus ``PATCH`` in
:mod:`tus`) receive a body on the event loop in small chunks. Writing and
hashing release the GIL, so they run in worker threads in ~1 MiB batches
while the loop receives the next bytes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from collections.abc import Callable, Sequence
from typing import Any

BATCH = 1024 * 1024

# Two pools: a batch (in _BATCHES) waits for its digests (in _DIGESTS), never
# the other way round, so neither pool can starve the other.
_WORKERS = min(32, (os.cpu_count() or 1) * 4)
_BATCHES = concurrent.futures.ThreadPoolExecutor(_WORKERS, thread_name_prefix="updl-write")
_DIGESTS = concurrent.futures.ThreadPoolExecutor(_WORKERS, thread_name_prefix="updl-digest")


class WorkerPipe:
    """Queues bytes on the event loop and hands them, batch by batch, to a worker thread.

    ``add`` only queues. ``pump`` hands over a full batch once the previous
    one is done, which keeps the batches in order and at most two of them in
    memory. In the thread a batch goes to ``write`` while each digest takes it
    on a thread of its own. ``finish`` flushes the
    rest; ``settle`` waits for a batch in flight, before the caller rolls the
    storage back after an error.
    """

    def __init__(self, write: Callable[[bytes], None], digests: Sequence[Any] = ()) -> None:
        """Send batches to ``write`` and feed them to ``digests`` (hashlib objects)."""
        self._write = write
        self._digests = list(digests)
        self._queued: list[bytes] = []
        self._queued_size = 0
        self._in_flight: concurrent.futures.Future[None] | None = None

    def add(self, data: bytes) -> None:
        """Queue ``data``."""
        self._queued.append(data)
        self._queued_size += len(data)

    async def pump(self) -> None:
        """Hand a full batch to a worker thread (waiting for the previous one first)."""
        if self._queued_size >= BATCH:
            await self._hand_over()

    async def finish(self) -> None:
        """Write and hash everything queued; afterwards the digests are final."""
        if self._queued_size:
            await self._hand_over()
        await self._wait()

    def settle(self) -> None:
        """Block until no batch is being written (a few milliseconds at most)."""
        if self._in_flight is not None:
            concurrent.futures.wait([self._in_flight])

    async def _hand_over(self) -> None:
        data = b"".join(self._queued)
        self._queued, self._queued_size = [], 0
        await self._wait()
        self._in_flight = _BATCHES.submit(self._absorb, data)

    async def _wait(self) -> None:
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            await asyncio.wrap_future(in_flight)

    def _absorb(self, data: bytes) -> None:
        # The digests run alongside the write, on their own threads: a write is often waiting
        # on the disk, and hashing then costs no extra time.
        alongside = [_DIGESTS.submit(digest.update, data) for digest in self._digests]
        self._write(data)
        for done in alongside:
            done.result()
