"""The updl SDK: everything that moves and verifies bytes. Imports no UI library."""

from __future__ import annotations

from .access import NewToken, TokenInfo, WhoAmI
from .client import Client
from .config import Settings, load_settings
from .errors import (
    AuthenticationError,
    BadRequestError,
    BatchFailedError,
    ChecksumMismatchError,
    ConfigWarning,
    ConnectionFailedError,
    ForbiddenError,
    InsufficientStorageError,
    InvalidSettingsError,
    ManifestError,
    MissingFilesError,
    NoFilesError,
    NotFoundError,
    PartialFailureError,
    PreconditionFailedError,
    ProtocolError,
    QuotaExceededError,
    RateLimitedError,
    SelectionError,
    ServerError,
    SourceChangedError,
    TlsError,
    TooLargeError,
    UnsafeNameError,
    UpdlError,
    UploadBusyError,
)
from .hashing import HashingReader, HashingWriter, md5_of
from .models import FileInfo, Prefix, Usage
from .progress import ProgressCallback, ProgressEvent, tqdm_progress
from .retry import RetryEvent, RetryPolicy, run_with_retries
from .shares import ShareLink

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
    "ShareLink",
    "SourceChangedError",
    "TlsError",
    "TokenInfo",
    "TooLargeError",
    "UnsafeNameError",
    "UpdlError",
    "UploadBusyError",
    "Usage",
    "WhoAmI",
    "load_settings",
    "md5_of",
    "run_with_retries",
    "tqdm_progress",
]
