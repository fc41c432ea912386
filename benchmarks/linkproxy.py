"""A TCP proxy that emulates a long link in user space: round-trip delay, a window, an optional rate.

    python benchmarks/linkproxy.py --target 127.0.0.1:8000 --rtt-ms 50 [--listen 127.0.0.1:0]
                                   [--window 4MiB] [--rate-mbit 1000]

Prints ``listening on HOST:PORT`` once ready; runs until SIGTERM/SIGINT. The kernel's netem is not
available on the benchmark machines, so the link is modelled here, per connection and per direction:

- **A delay line, not a sleep per chunk.** What is read from one side is stamped with the time it
  may leave (``now + rtt/2``, later if ``--rate`` makes it wait for the link) and queued; a writer
  task sends each piece when its time comes. Reading goes on meanwhile, so the delay adds latency
  without capping throughput: a full pipe stays full, as on a real link.
- **A window.** At most ``--window`` bytes per direction are in flight, and a byte stays counted
  until one full round trip after it was read (its "acknowledgement" coming back), so one stream
  moves at most ``window / rtt`` — the limit a single TCP connection meets on a long link, which is
  why parallel connections help there. 4 MiB is about what Linux's default autotuning
  (``tcp_rmem`` max 6 MiB) gives one connection.
- **A rate** (optional): each direction of each connection serialises at ``--rate-mbit``.

Also usable in-process: ``LinkProxy(target, rtt=0.05).start()`` in a thread, ``.port``, ``.close()``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import threading
import time
from collections import deque

READ_SIZE = 1024 * 1024
MIB = 1024 * 1024


class _Direction:
    """One direction of one connection: reader -> delay line -> writer."""

    def __init__(self, one_way: float, rtt: float, window: int, rate: float | None) -> None:
        self._one_way = one_way
        self._rtt = rtt
        self._window = window
        self._rate = rate  # bytes per second, None: unlimited
        self._line: deque[tuple[float, bytes]] = deque()
        self._acks: deque[tuple[float, int]] = deque()  # (time the window gets it back, bytes)
        self._in_flight = 0
        self._link_free = 0.0  # when the (rate-limited) link finishes sending what it has
        self._queued = asyncio.Event()

    async def _reserve(self, size: int) -> None:
        """Wait until ``size`` more bytes fit in the window (acks come back one RTT after reading)."""
        while True:
            now = time.monotonic()
            while self._acks and self._acks[0][0] <= now:
                self._in_flight -= self._acks.popleft()[1]
            if self._in_flight + size <= self._window or not self._acks:
                return
            await asyncio.sleep(max(0.0, self._acks[0][0] - now))

    async def pump_in(self, reader: asyncio.StreamReader) -> None:
        """Read from the source and queue each piece with its departure time."""
        while True:
            await self._reserve(READ_SIZE)
            try:
                data = await reader.read(READ_SIZE)
            except (ConnectionError, OSError):
                data = b""  # a reset ends this direction like an EOF
            now = time.monotonic()
            if self._rate:
                self._link_free = max(now, self._link_free) + len(data) / self._rate
                sent = self._link_free
            else:
                sent = now
            self._in_flight += len(data)
            self._acks.append((sent + self._rtt, len(data)))
            self._line.append((sent + self._one_way, data))
            self._queued.set()
            if not data:  # EOF travels the line too
                return

    async def pump_out(self, writer: asyncio.StreamWriter) -> None:
        """Deliver each queued piece when its time has come; EOF half-closes the other side."""
        try:
            while True:
                while not self._line:
                    self._queued.clear()
                    await self._queued.wait()
                due, data = self._line.popleft()
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            return


class LinkProxy:
    """The proxy (see the module docstring); ``start()`` runs it in a daemon thread."""

    def __init__(
        self,
        target: tuple[str, int],
        rtt: float = 0.0,
        *,
        listen: tuple[str, int] = ("127.0.0.1", 0),
        window: int = 4 * MIB,
        rate: float | None = None,
    ) -> None:
        self.target = target
        self.rtt = rtt
        self.window = window
        self.rate = rate
        self.listen = listen
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.close()
            return
        half = self.rtt / 2
        up = _Direction(half, self.rtt, self.window, self.rate)
        down = _Direction(half, self.rtt, self.window, self.rate)
        tasks = [
            asyncio.ensure_future(up.pump_in(client_r)),
            asyncio.ensure_future(up.pump_out(server_w)),
            asyncio.ensure_future(down.pump_in(server_r)),
            asyncio.ensure_future(down.pump_out(client_w)),
        ]
        try:
            # Both writers done (EOF delivered both ways) or any side reset: tear the pair down.
            await asyncio.wait([tasks[1], tasks[3]], return_when=asyncio.ALL_COMPLETED)
        except asyncio.CancelledError:
            pass
        finally:
            for task in tasks:
                task.cancel()
            for writer in (client_w, server_w):
                with contextlib.suppress(Exception):
                    writer.close()

    async def serve(self) -> None:
        """Accept connections until :meth:`close` (or the loop is stopped)."""
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._handle, *self.listen)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()

    def start(self) -> LinkProxy:
        """Serve in a daemon thread; returns once listening."""

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self.serve())

        self._thread = threading.Thread(target=run, name="linkproxy", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def close(self) -> None:
        """Stop accepting and end the thread (open connections die with it)."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


def _size(text: str) -> int:
    units = {"": 1, "k": 1024, "kib": 1024, "m": MIB, "mib": MIB, "g": 1024 * MIB, "gib": 1024 * MIB}
    digits = text.rstrip("kKmMgGiIbB")
    return int(float(digits) * units[text[len(digits) :].lower()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", type=_address, required=True, help="HOST:PORT to forward to")
    parser.add_argument("--listen", type=_address, default=("127.0.0.1", 0), help="HOST:PORT (default a free port)")
    parser.add_argument("--rtt-ms", type=float, default=0.0, help="round trip added, split evenly per direction")
    parser.add_argument("--window", type=_size, default=4 * MIB, help="bytes in flight per direction (default 4MiB)")
    parser.add_argument("--rate-mbit", type=float, default=None, help="per connection and direction (default none)")
    opts = parser.parse_args()
    rate = opts.rate_mbit * 1e6 / 8 if opts.rate_mbit else None
    proxy = LinkProxy(opts.target, opts.rtt_ms / 1000, listen=opts.listen, window=opts.window, rate=rate)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        serving = asyncio.ensure_future(proxy.serve())
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: proxy._stop.set() if proxy._stop else None)
        await asyncio.wait_for(asyncio.shield(asyncio.ensure_future(asyncio.to_thread(proxy._ready.wait))), 10)
        print(f"listening on {proxy.listen[0]}:{proxy.port}", flush=True)
        await serving

    asyncio.run(run())
    sys.exit(0)


if __name__ == "__main__":
    main()
