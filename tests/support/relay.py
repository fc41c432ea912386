"""A TCP relay between a client and a live server, for tests that need trouble in transit.

It counts bytes each way (``up``, ``down``) and the connections it accepted (``accepted``) and, on
request:

- ``corrupt="once"`` flips the first NUL byte (``0x00`` → ``0x01``) it ever relays from client
  to server (the first upload attempt is corrupt, later ones are clean); ``corrupt="always"``
  flips every one (every attempt is corrupt). HTTP request lines, headers and multipart
  boundaries never contain NUL, so only file content is touched. ``flipped`` counts the flips.
- ``stall_up_after=N`` forwards the first N client→server bytes (over all connections) and
  then holds the connection open without forwarding more (``stalled`` is set) until
  :meth:`drop_connections`.
- ``cut_down_after=N`` forwards N server→client bytes and then closes that connection (once).
- :meth:`retarget` points new connections at another port (a restarted server).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Literal


class Relay:
    """Relays 127.0.0.1:<port> to 127.0.0.1:<target_port>."""

    def __init__(
        self,
        target_port: int,
        *,
        corrupt: Literal["once", "always"] | None = None,
        stall_up_after: int | None = None,
        cut_down_after: int | None = None,
    ) -> None:
        self.target_port = target_port
        self.corrupt = corrupt
        self.stall_up_after = stall_up_after
        self.cut_down_after = cut_down_after
        self.up = 0
        self.down = 0
        self.flipped = 0
        self.accepted = 0
        self.stalled = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept_loop, daemon=True).start()

    @property
    def url(self) -> str:
        """The URL clients use instead of the server's."""
        return f"http://127.0.0.1:{self.port}"

    def retarget(self, port: int) -> None:
        """Send new connections to ``port``."""
        self.target_port = port

    def reset(self) -> None:
        """Zero the counters and stop stalling or cutting."""
        with self._lock:
            self.up = self.down = self.accepted = 0
            self.stall_up_after = self.cut_down_after = None

    def drop_connections(self) -> None:
        """Close every relayed connection (both sides), releasing stalled ones."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _close(sock)

    def close(self) -> None:
        """Stop listening and close every relayed connection."""
        self._listener.close()
        self.drop_connections()

    def _accept_loop(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
                self.accepted += 1
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _allow(self, size: int, upstream: bool) -> tuple[int, bool]:
        """How many of ``size`` bytes to forward, and whether to stop after them."""
        with self._lock:
            limit = self.stall_up_after if upstream else self.cut_down_after
            seen = self.up if upstream else self.down
            allowed = size if limit is None else max(0, min(size, limit - seen))
            stop = limit is not None and seen + size >= limit
            if upstream:
                self.up += allowed
            else:
                self.down += allowed
                if stop:
                    self.cut_down_after = None  # cut one connection only
            return allowed, stop

    def _corrupted(self, data: bytes) -> bytes:
        """``data`` with its NUL bytes flipped as ``corrupt`` asks."""
        with self._lock:
            if self.corrupt is None or b"\x00" not in data:
                return data
            if self.corrupt == "once":
                if self.flipped:
                    return data
                at = data.index(b"\x00")
                self.flipped = 1
                return data[:at] + b"\x01" + data[at + 1 :]
            self.flipped += data.count(b"\x00")
            return data.replace(b"\x00", b"\x01")

    def _pipe(self, source: socket.socket, sink: socket.socket, upstream: bool) -> None:
        try:
            while data := source.recv(65536):
                allowed, stop = self._allow(len(data), upstream)
                forward = data[:allowed]
                sink.sendall(self._corrupted(forward) if upstream else forward)
                if stop and upstream:
                    self.stalled.set()
                    while source.recv(65536):  # hold the connection; returns when dropped
                        pass
                    return
                if stop:
                    return
        except OSError:
            pass
        finally:
            _close(source)
            _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
