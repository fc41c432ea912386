"""A TCP relay for resume tests: counts bytes each way, can stall uploads or cut downloads.

``stall_up_after=N`` forwards the first N client→server bytes (over all
connections) and then holds the connection open without forwarding more
(``stalled`` is set) until :meth:`drop_connections`. ``cut_down_after=N``
forwards N server→client bytes and then closes that connection (once).
``retarget`` points new connections at another port (a restarted server).
"""

from __future__ import annotations

import socket
import threading


class Relay:
    """Relays 127.0.0.1:<port> to 127.0.0.1:<target_port>."""

    def __init__(self, target_port: int, *, stall_up_after: int | None = None,
                 cut_down_after: int | None = None) -> None:
        self.target_port = target_port
        self.stall_up_after = stall_up_after
        self.cut_down_after = cut_down_after
        self.up = 0
        self.down = 0
        self.stalled = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept_loop, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def retarget(self, port: int) -> None:
        self.target_port = port

    def reset(self) -> None:
        """Zero the counters and stop stalling or cutting."""
        with self._lock:
            self.up = self.down = 0
            self.stall_up_after = self.cut_down_after = None

    def drop_connections(self) -> None:
        """Close every relayed connection (both sides), releasing stalled ones."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _close(sock)

    def close(self) -> None:
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

    def _pipe(self, source: socket.socket, sink: socket.socket, upstream: bool) -> None:
        try:
            while data := source.recv(65536):
                allowed, stop = self._allow(len(data), upstream)
                sink.sendall(data[:allowed])
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
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
