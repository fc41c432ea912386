"""Where file contents live: blobs, and the staged bytes of resumable uploads.

The interfaces are in :mod:`.base`; ``open_store`` picks the implementation a
configuration asks for. This package imports nothing from Starlette: the
routes and the tus state machine drive it, never the other way round.
"""

from __future__ import annotations

from ..config import ServerConfig
from .base import (
    BlobNotFoundError,
    BlobReader,
    BlobStore,
    BlobWriter,
    StagedUpload,
    StagedUploadGoneError,
    Staging,
    StagingBusyError,
    SweepReport,
)
from .local import LocalBlobStore

__all__ = [
    "BlobNotFoundError",
    "BlobReader",
    "BlobStore",
    "BlobWriter",
    "LocalBlobStore",
    "StagedUpload",
    "StagedUploadGoneError",
    "Staging",
    "StagingBusyError",
    "SweepReport",
    "open_store",
]


def open_store(config: ServerConfig) -> BlobStore:
    """The blob store ``config`` asks for: local disk in the data dir, or S3."""
    if config.s3 is None:
        return LocalBlobStore(config.blob_root)
    from .s3 import S3BlobStore  # boto3 is the optional 's3' extra

    return S3BlobStore(
        config.s3.bucket, config.s3.prefix, endpoint_url=config.s3_endpoint_url, max_size=config.max_size
    )
