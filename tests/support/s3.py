"""Helpers for the S3 tests: a bucket on moto's S3 server and how to look inside it.

The fixtures (moto's server over real HTTP, a bucket per test, S3 servers) are in
``tests/server/conftest.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
PREFIX = "updl/blobs"
DEADLINE = 15.0


@dataclass
class Bucket:
    """A fresh bucket on the moto server, and a client to look inside it."""

    endpoint: str
    name: str
    client: Any

    @property
    def storage(self) -> str:
        """The ``--storage`` value for this bucket."""
        return f"s3://{self.name}/{PREFIX}"

    def keys(self, prefix: str = PREFIX) -> list[str]:
        """Every key under ``prefix``."""
        answer = self.client.list_objects_v2(Bucket=self.name, Prefix=prefix)
        return sorted(item["Key"] for item in answer.get("Contents", []))

    def blob_keys(self) -> list[str]:
        """Committed blobs (not staging)."""
        return [k for k in self.keys() if not k.startswith(f"{PREFIX}/staging/")]

    def read(self, key: str) -> bytes:
        """An object's bytes."""
        return bytes(self.client.get_object(Bucket=self.name, Key=key)["Body"].read())

    def uploads_in_progress(self) -> list[dict[str, Any]]:
        """Multipart uploads not completed or aborted."""
        uploads: list[dict[str, Any]] = self.client.list_multipart_uploads(Bucket=self.name).get("Uploads", [])
        return uploads
