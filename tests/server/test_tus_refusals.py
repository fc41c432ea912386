"""tus requests the server must refuse rather than half-serve: concatenation, oversized metadata."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import requests

from tests.support.api import Api
from tests.support.tus import STREAM, TUS, create, metadata, staging

if TYPE_CHECKING:
    from tests.support.live_server import LiveServer

MAX_METADATA_BYTES = 8 * 1024  # as docs/api.md states


def test_concatenation_is_refused_and_nothing_is_stored(live_server: LiveServer, api: Api) -> None:
    # What tus-js-client sends with parallelUploads: 2 — two partial uploads, each
    # (with creation-with-upload) carrying its half, then a final one joining them.
    data = os.urandom(4000)
    staged_before = set(staging(live_server).glob("*"))
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
    answers.append(
        api.request(
            "POST",
            "/tus/",
            headers={**TUS, "Upload-Concat": "final;/tus/a /tus/b", "Upload-Metadata": metadata(name="halves.bin")},
        )
    )
    for answer in answers:
        assert answer.status_code == 400, answer.text
        assert "Upload-Concat" in answer.json()["error"]
        assert answer.headers["Tus-Resumable"] == "1.0.0"
    assert api.names() == []
    assert set(staging(live_server).glob("*")) == staged_before
    options = requests.options(f"{live_server.url}/tus/", timeout=10)
    assert "concatenation" not in options.headers["Tus-Extension"]


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
