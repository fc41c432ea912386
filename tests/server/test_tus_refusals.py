"""tus requests the server must refuse rather than half-serve: unknown parts, oversized metadata."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import requests

from tests.support.api import Api
from tests.support.tus import STREAM, TUS, create, metadata

if TYPE_CHECKING:
    from tests.support.live_server import LiveServer

MAX_METADATA_BYTES = 8 * 1024  # as docs/api.md states


def test_concatenation_with_creation_with_upload_and_unknown_parts(live_server: LiveServer, api: Api) -> None:
    # What tus-js-client sends with parallelUploads: 2 — two partial uploads, each
    # (with creation-with-upload) carrying its half, then a final one joining them.
    # Parts are never files by themselves; a final naming no upload of ours is a 400.
    data = os.urandom(4000)
    answers = [
        api.request(
            "POST",
            "/tus/",
            data=half,
            headers={
                **STREAM,
                "Upload-Concat": "partial",
                "Upload-Length": str(len(half)),
                "Upload-Metadata": metadata(name="halves.bin"),
            },
        )
        for half in (data[:2000], data[2000:])
    ]
    for answer in answers:
        assert answer.status_code == 201, answer.text
        assert answer.headers["Upload-Offset"] == "2000" and "Upload-Md5" not in answer.headers
    assert api.names() == []
    refused = api.request(
        "POST",
        "/tus/",
        headers={**TUS, "Upload-Concat": "final;/tus/a /tus/b", "Upload-Metadata": metadata(name="halves.bin")},
    )
    assert refused.status_code == 400, refused.text
    assert "Upload-Concat" in refused.json()["error"]
    assert refused.headers["Tus-Resumable"] == "1.0.0"
    assert api.names() == []
    parts = " ".join(answer.headers["Location"] for answer in answers)
    joined = api.request(
        "POST",
        "/tus/",
        headers={**TUS, "Upload-Concat": f"final;{parts}", "Upload-Metadata": metadata(name="halves.bin")},
    )
    assert joined.status_code == 201, joined.text
    assert api.get("halves.bin").content == data
    options = requests.options(f"{live_server.url}/tus/", timeout=10)
    assert "concatenation" in options.headers["Tus-Extension"].split(",")


def test_upload_metadata_is_bounded(api: Api) -> None:
    oversized = api.request(
        "POST",
        "/tus/",
        headers={
            **TUS,
            "Upload-Length": "10",
            "Upload-Metadata": metadata(name="big-meta.bin", note="x" * MAX_METADATA_BYTES),
        },
    )
    assert oversized.status_code == 431, oversized.text
    assert oversized.json()["max_metadata_bytes"] == MAX_METADATA_BYTES
    # Just under the bound is fine, and HEAD echoes it whole.
    note = "y" * (MAX_METADATA_BYTES * 3 // 4 - 100)
    response = create(api, 10, "meta.bin", note=note)
    assert response.status_code == 201, response.text
    path = "/tus/" + response.headers["Location"].rsplit("/tus/", 1)[1]
    head = api.request("HEAD", path, headers=TUS)
    assert head.headers["Upload-Metadata"] == metadata(name="meta.bin", note=note)
    assert api.names() == []
