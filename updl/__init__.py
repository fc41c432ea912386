"""updl: integrity-first file transfer.

>>> from updl import Client
>>> with Client("http://127.0.0.1:8000", token="...") as client:   # doctest: +SKIP
...     info = client.upload("app.tar.gz")
...     client.download("app.tar.gz", "copy.tar.gz")
"""

from __future__ import annotations

import logging

__version__ = "0.1.0"

from .sdk import (  # noqa: E402  (after __version__: the transport reads it)
    AuthenticationError,
    BadRequestError,
    ChecksumMismatchError,
    Client,
    ConnectionFailedError,
    InsufficientStorageError,
    FileInfo,
    InvalidSettingsError,
    NotFoundError,
    ProgressCallback,
    ProgressEvent,
    ProtocolError,
    RateLimitedError,
    RetryEvent,
    RetryPolicy,
    ServerError,
    Settings,
    SourceChangedError,
    TooLargeError,
    UpdlError,
    load_settings,
)

# A library logs; the application decides where it goes.
logging.getLogger("updl").addHandler(logging.NullHandler())

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "ChecksumMismatchError",
    "Client",
    "ConnectionFailedError",
    "InsufficientStorageError",
    "FileInfo",
    "InvalidSettingsError",
    "NotFoundError",
    "ProgressCallback",
    "ProgressEvent",
    "ProtocolError",
    "RateLimitedError",
    "RetryEvent",
    "RetryPolicy",
    "ServerError",
    "Settings",
    "SourceChangedError",
    "TooLargeError",
    "UpdlError",
    "__version__",
    "load_settings",
]
