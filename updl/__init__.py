"""updl: integrity-first file transfer.

>>> from updl import Client
>>> with Client("http://127.0.0.1:8000", token="...") as client:   # doctest: +SKIP
...     info = client.upload("app.tar.gz")
...     client.download("app.tar.gz", "copy.tar.gz")
"""

from __future__ import annotations

import logging

from .sdk import (
    AuthenticationError,
    BadRequestError,
    BatchFailedError,
    ChecksumMismatchError,
    Client,
    ConfigWarning,
    ConnectionFailedError,
    FileInfo,
    ForbiddenError,
    HashingReader,
    HashingWriter,
    InsufficientStorageError,
    InvalidSettingsError,
    ManifestError,
    MissingFilesError,
    NewToken,
    NoFilesError,
    NotFoundError,
    PartialFailureError,
    PreconditionFailedError,
    Prefix,
    ProgressCallback,
    ProgressEvent,
    ProtocolError,
    QuotaExceededError,
    RateLimitedError,
    RetryEvent,
    RetryPolicy,
    SelectionError,
    ServerError,
    Settings,
    SourceChangedError,
    TlsError,
    TokenInfo,
    TooLargeError,
    UnsafeNameError,
    UpdlError,
    UploadBusyError,
    Usage,
    WhoAmI,
    load_settings,
    md5_of,
    run_with_retries,
    tqdm_progress,
)
from .sdk.version import __version__

# A library logs; the application decides where it goes.
logging.getLogger("updl").addHandler(logging.NullHandler())

# The same public names as updl.sdk (tests/unit/test_layers.py checks), plus the version.
__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "BatchFailedError",
    "ChecksumMismatchError",
    "Client",
    "ConfigWarning",
    "ConnectionFailedError",
    "FileInfo",
    "ForbiddenError",
    "HashingReader",
    "HashingWriter",
    "InsufficientStorageError",
    "InvalidSettingsError",
    "ManifestError",
    "MissingFilesError",
    "NewToken",
    "NoFilesError",
    "NotFoundError",
    "PartialFailureError",
    "PreconditionFailedError",
    "Prefix",
    "ProgressCallback",
    "ProgressEvent",
    "ProtocolError",
    "QuotaExceededError",
    "RateLimitedError",
    "RetryEvent",
    "RetryPolicy",
    "SelectionError",
    "ServerError",
    "Settings",
    "SourceChangedError",
    "TlsError",
    "TokenInfo",
    "TooLargeError",
    "UnsafeNameError",
    "UpdlError",
    "UploadBusyError",
    "Usage",
    "WhoAmI",
    "__version__",
    "load_settings",
    "md5_of",
    "run_with_retries",
    "tqdm_progress",
]
