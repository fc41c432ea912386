"""What the S3 store and its staging area share: the boto3 client, S3's error codes and limits.

Kept apart so that :mod:`.s3` (which owns a staging area) and :mod:`.s3_staging`
(which promotes staged bytes into the store's blobs) need not import each other.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

MIN_PART_SIZE = 5 * 1024 * 1024  # S3's smallest part but the last
MAX_PARTS = 10_000
NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})
# A conditional write (If-None-Match / If-Match) that another writer won.
LOST_RACE = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})


def make_client(endpoint_url: str | None) -> Any:
    """An S3 client with credentials and region from boto3's usual chain."""
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint_url, config=Config(retries={"mode": "standard"}, max_pool_connections=50)
    )


def error_code(exc: ClientError) -> str:
    """The S3 error code of a botocore ``ClientError``."""
    return str(exc.response.get("Error", {}).get("Code", ""))
