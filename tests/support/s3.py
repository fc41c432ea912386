"""Fixtures for the S3 tests: moto's S3 server over real HTTP, a bucket per test, S3 servers."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.live_server import LiveServer

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}
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
        uploads: list[dict[str, Any]] = self.client.list_multipart_uploads(
            Bucket=self.name).get("Uploads", [])
        return uploads


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server in a thread of the test process, on a free port."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_endpoint: str) -> Bucket:
    """A new, empty bucket."""
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    name = f"updl-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return Bucket(s3_endpoint, name, client)


@pytest.fixture
def s3_server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        Callable[..., LiveServer]]:
    """Start ``updl-server run --storage s3://...`` processes: ``start(bucket, *args, data_dir=)``."""
    started: list[LiveServer] = []

    def start(bucket: Bucket, *args: str, data_dir: Path | None = None) -> LiveServer:
        server = LiveServer(
            data_dir=data_dir or tmp_path_factory.mktemp("s3-server-data"),
            args=("--storage", bucket.storage, "--s3-endpoint-url", bucket.endpoint, *args),
            env=AWS_ENV)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
