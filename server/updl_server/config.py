"""Server settings: one frozen value built by the CLI and handed to the app."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

KIB = 1024
GIB = 1024**3
DEFAULT_MAX_SIZE = 10 * GIB

# Decimal suffixes (K, M, G, T, KB, MB, ...) count in 1000s; binary ones (KiB, MiB, ...) in 1024s.
_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]?)(i?)(b?)\s*$", re.IGNORECASE)
_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}


def parse_size(text: str) -> int:
    """Parse ``"500M"``, ``"10G"``, ``"1GiB"`` or plain bytes into a byte count.

    ``K``/``M``/``G``/``T`` (optionally followed by ``B``) are decimal (1000s);
    ``KiB``/``MiB``/``GiB``/``TiB`` are binary (1024s). Raises ``ValueError``.
    """
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"not a size: {text!r} (use bytes or a suffix like 500M, 10G, 1GiB)")
    digits, unit, binary, _ = match.groups()
    if binary and not unit:
        raise ValueError(f"not a size: {text!r} (a bare 'i' has no meaning)")
    base = 1024 if binary else 1000
    size: int = int(digits) * base ** _POWERS[unit.lower()]
    if size < 1:
        raise ValueError("the size limit must be at least 1 byte")
    return size


@dataclass(frozen=True)
class S3Location:
    """Where an S3 blob store keeps blobs: ``s3://BUCKET/PREFIX``."""

    bucket: str
    prefix: str = ""


def parse_storage(text: str | None) -> S3Location | None:
    """``--storage``: ``local`` (or nothing) for the data dir, or ``s3://BUCKET[/PREFIX]``.

    Raises ``ValueError`` for anything else.
    """
    if text is None or text.strip() in ("", "local"):
        return None
    scheme, _, rest = text.strip().partition("://")
    bucket, _, prefix = rest.partition("/")
    if scheme != "s3" or not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", bucket):
        raise ValueError(f"not a storage location: {text!r} (use 'local' or s3://BUCKET/PREFIX)")
    return S3Location(bucket, prefix.strip("/"))


_ORIGIN = re.compile(r"^https?://[^/?#\s]+$")


def parse_origin(text: str) -> str:
    """``--cors-origin``: ``*`` or ``scheme://host[:port]`` (no path). Raises ``ValueError``."""
    origin = text.strip().rstrip("/")
    if origin != "*" and not _ORIGIN.match(origin):
        raise ValueError(f"not an origin: {text!r} (use http(s)://HOST[:PORT], or *)")
    return origin


@dataclass(frozen=True)
class ConnectionLimits:
    """What clients may hold of one server process, and for how long (docs/api.md,
    "Limits and timeouts"; enforced by :mod:`updl_server.connections`).

    Defaults of the order of nginx's: header buffers of tens of KiB,
    client_header_timeout and client_body_timeout of 60 s, a thousand connections.
    """

    max_header_size: int = 64 * KIB  # request line and headers together; 431 beyond
    header_timeout: float = 30.0  # seconds from connection (or first byte) to the end of the head
    body_timeout: float = 60.0  # seconds without a byte of a request body
    max_connections: int = 1000  # per process; 503 beyond, closed at once beyond twice this


@dataclass(frozen=True)
class ServerConfig:
    """Everything the server needs to run; the CLI resolves flags and environment into this."""

    data_dir: Path
    db_url: str | None = None
    max_size: int = DEFAULT_MAX_SIZE
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
    s3: S3Location | None = None  # None: blobs on local disk in the data dir
    s3_endpoint_url: str | None = None
    s3_presign_downloads: bool = False
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    cors_origins: tuple[str, ...] = ()  # browser origins allowed to call the API; "*": any
    default_retention: int | None = None  # seconds a file is kept when neither upload nor user says
    sweep_interval: float = 600.0  # seconds between sweeps of expired files (retention.py)

    @property
    def database_url(self) -> str:
        """The configured database URL, or the embedded SQLite file inside the data dir."""
        if self.db_url:
            return self.db_url
        return f"sqlite:///{self.data_dir.resolve() / 'updl.db'}"

    @property
    def blob_root(self) -> Path:
        """Where the local blob store keeps file contents."""
        return self.data_dir / "blobs"
