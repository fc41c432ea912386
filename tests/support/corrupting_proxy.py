"""A tiny TCP relay that corrupts uploads in transit, for integrity tests.

It flips NUL bytes (``0x00`` → ``0x01``) travelling from client to server. HTTP
request lines, headers and multipart boundaries never contain NUL, so only file
content is touched. ``mode="once"`` flips the first NUL it ever relays (the first
upload attempt is corrupt, later ones are clean); ``mode="always"`` flips every
NUL (every attempt is corrupt).
"""

from __future__ import annotations

import socket
import threading
from typing import Literal


class CorruptingProxy:
    """Relays 127.0.0.1:<port> to ``target`` and corrupts client→server bytes."""

    def __init__(self, target_host: str, target_port: int, mode: Literal["once", "always"]) -> None:
        self.target = (target_host, target_port)
        self.mode = mode
        self.flipped = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = threading.Event()
        threading.Thread(target=self._accept_loop, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._closed.set()
        self._listener.close()

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _corrupt(self, data: bytes) -> bytes:
        with self._lock:
            if self.mode == "once":
                if self.flipped or b"\x00" not in data:
                    return data
                at = data.index(b"\x00")
                self.flipped = 1
                return data[:at] + b"\x01" + data[at + 1:]
            self.flipped += data.count(b"\x00")
            return data.replace(b"\x00", b"\x01")

    def _pipe(self, source: socket.socket, sink: socket.socket, upstream: bool) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(self._corrupt(data) if upstream else data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
