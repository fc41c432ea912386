"""A certificate authority made by the test, a server certificate from it, and TLS sockets.

``trustme`` makes a throwaway CA and a certificate for ``127.0.0.1`` and
``localhost``: what an operator of a self-signed deployment has, without
touching the system's trust store.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import trustme


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: the CA to trust, the server's certificate chain and its private key."""

    ca: Path
    cert: Path
    key: Path

    def server_args(self) -> tuple[str, ...]:
        """The ``updl-server run`` arguments that serve HTTPS with this certificate."""
        return ("--tls-cert", str(self.cert), "--tls-key", str(self.key))


def make_tls_files(directory: Path) -> TlsFiles:
    """A new CA and a server certificate for 127.0.0.1 and localhost, written under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    files = TlsFiles(ca=directory / "ca.pem", cert=directory / "server-chain.pem", key=directory / "server-key.pem")
    ca.cert_pem.write_to_path(str(files.ca))
    with files.cert.open("wb") as out:
        for pem in issued.cert_chain_pems:
            out.write(pem.bytes())
    issued.private_key_pem.write_to_path(str(files.key))
    return files


def connect_tls(url: str, ca: Path, timeout: float) -> ssl.SSLSocket:
    """A TLS connection to the server at ``url``, the handshake done and the certificate verified."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    context = ssl.create_default_context(cafile=str(ca))
    raw = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
    return context.wrap_socket(raw, server_hostname=parts.hostname)
