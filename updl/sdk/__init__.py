"""The updl SDK: everything that moves and verifies bytes. Imports no UI library."""

from __future__ import annotations

from .client import Client
from .config import Settings, load_settings
from .errors import (
    AuthenticationError,
    BadRequestError,
    ChecksumMismatchError,
    ConnectionFailedError,
    InsufficientStorageError,
    InvalidSettingsError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    ServerError,
    SourceChangedError,
    TooLargeError,
    UpdlError,
    UploadBusyError,
)
from .hashing import HashingReader, HashingWriter, md5_of
from .models import FileInfo
from .progress import ProgressCallback, ProgressEvent, tqdm_progress
from .retry import RetryEvent, RetryPolicy, run_with_retries

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "ChecksumMismatchError",
    "Client",
    "ConnectionFailedError",
    "InsufficientStorageError",
    "FileInfo",
    "HashingReader",
    "HashingWriter",
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
    "UploadBusyError",
    "load_settings",
    "md5_of",
    "run_with_retries",
    "tqdm_progress",
]
