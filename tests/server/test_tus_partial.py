"""What an interrupted tus PATCH leaves behind (docs/api.md, "Interrupted PATCHes").

A PATCH without ``Upload-Checksum`` keeps the bytes the server received and made
durable: HEAD's offset moves to them and the upload resumes there. A PATCH with
a checksum is all or nothing. Each PATCH is a raw socket that stops half way,
so the test decides exactly when the client goes away.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.api import Api, md5_hex
from tests.support.live_server import LiveServer
from tests.support.relay import Relay
from tests.support.tus import created, offset_of, patch, staging, start_raw_patch
from tests.support.waiting import wait_for
from updl_server.tus.service import CHECKPOINT_BYTES

MIB = 1024 * 1024


def staged_size(server: LiveServer, path: str) -> int:
    return (staging(server) / path.rsplit("/", 1)[1]).stat().st_size


def test_a_dropped_patch_without_checksum_keeps_what_arrived(
    server_factory: Callable[..., LiveServer], make_api: Callable[[LiveServer], Api]
) -> None:
    server = server_factory()
    api = make_api(server)
    data = os.urandom(12 * MIB)
    path = created(api, len(data), md5=md5_hex(data))
    sock = start_raw_patch(api, path, 0, len(data), data[: 8 * MIB])
    wait_for(lambda: staged_size(server, path) >= 6 * MIB, "6 MiB of the PATCH to reach staging")
    seen = staged_size(server, path)  # bytes the server certainly received
    sock.close()  # the client goes away mid-body
    wait_for(lambda: offset_of(api, path) > 0, "the offset to move")
    kept = offset_of(api, path)
    # Everything staged before the drop is kept, no byte past what was sent, and the
    # offset counts exactly the durable bytes.
    assert seen <= kept <= 8 * MIB
    assert kept == staged_size(server, path)
    # The client resumes where HEAD says; the whole file's MD5 still decides the commit.
    resumed = patch(api, path, kept, data[kept:], algorithm=None)
    assert resumed.status_code == 204, resumed.text
    assert resumed.headers["Upload-Md5"] == md5_hex(data)
    assert api.get("big.bin").content == data


def test_a_dropped_patch_with_checksum_is_rolled_back(
    server_factory: Callable[..., LiveServer], make_api: Callable[[LiveServer], Api]
) -> None:
    server = server_factory()
    api = make_api(server)
    data = os.urandom(12 * MIB)
    path = created(api, len(data), md5=md5_hex(data))
    checksum = bytes.fromhex(md5_hex(data))  # covers the whole body: none of it can be kept
    sock = start_raw_patch(api, path, 0, len(data), data[: 8 * MIB], checksum)
    wait_for(lambda: staged_size(server, path) >= 6 * MIB, "6 MiB of the PATCH to reach staging")
    sock.close()
    wait_for(lambda: staged_size(server, path) == 0, "the PATCH to be rolled back")
    assert offset_of(api, path) == 0
    resumed = patch(api, path, 0, data)
    assert resumed.status_code == 204, resumed.text
    assert api.get("big.bin").content == data


def test_a_long_patch_is_counted_at_checkpoints_while_it_runs(
    server_factory: Callable[..., LiveServer], make_api: Callable[[LiveServer], Api]
) -> None:
    server = server_factory()
    api = make_api(server)
    data = os.urandom(CHECKPOINT_BYTES + 16 * MIB)
    path = created(api, len(data), md5=md5_hex(data))
    sent = CHECKPOINT_BYTES + 8 * MIB
    sock = start_raw_patch(api, path, 0, len(data), data[:sent])
    try:
        # The PATCH is still open: HEAD already counts the durable checkpoint.
        wait_for(lambda: offset_of(api, path) > 0, "a checkpoint")
        assert CHECKPOINT_BYTES <= offset_of(api, path) < sent
        assert patch(api, path, offset_of(api, path), b"x", algorithm=None).status_code == 423  # still held
    finally:
        sock.close()
    wait_for(lambda: staged_size(server, path) == offset_of(api, path) > CHECKPOINT_BYTES, "the tail to be kept")
    kept = offset_of(api, path)
    resumed = patch(api, path, kept, data[kept:], algorithm=None)
    assert resumed.status_code == 204, resumed.text
    assert api.get("big.bin").content == data


@pytest.mark.parametrize("declared", [False, True], ids=["no-md5", "md5-metadata"])
def test_a_kept_prefix_with_the_wrong_bytes_after_it_fails_the_md5(
    server_factory: Callable[..., LiveServer], make_api: Callable[[LiveServer], Api], declared: bool
) -> None:
    # Keeping part of a PATCH does not weaken the commit: a resume with other bytes
    # than the file's is caught by the whole file's MD5 (declared in the metadata).
    server = server_factory()
    api = make_api(server)
    data = os.urandom(4 * MIB)
    path = created(api, len(data), **({"md5": md5_hex(data)} if declared else {}))
    sock = start_raw_patch(api, path, 0, len(data), data[: 3 * MIB])
    wait_for(lambda: staged_size(server, path) >= 2 * MIB, "2 MiB of the PATCH to reach staging")
    sock.close()
    wait_for(lambda: offset_of(api, path) > 0, "the offset to move")
    kept = offset_of(api, path)
    other = os.urandom(len(data) - kept)
    resumed = patch(api, path, kept, other, algorithm=None)
    if declared:
        assert resumed.status_code == 409, resumed.text
        assert api.names() == []
    else:
        assert resumed.status_code == 204, resumed.text
        assert api.get("big.bin").content == data[:kept] + other


def test_tuspy_default_single_patch_resumes_where_the_server_got_to(
    server_factory: Callable[..., LiveServer], make_api: Callable[[LiveServer], Api], tmp_path: Path
) -> None:
    # tuspy's defaults: one PATCH for the whole file, no checksum, no retries. The
    # connection drops part way; a new uploader for the same URL resumes from HEAD.
    from tusclient import client as tus_client
    from tusclient.exceptions import TusCommunicationError

    server = server_factory()
    api = make_api(server)
    data = os.urandom(24 * MIB)
    source = tmp_path / "via-tuspy.bin"
    source.write_bytes(data)
    relay = Relay(int(server.url.rsplit(":", 1)[1]), stall_up_after=16 * MIB)
    client = tus_client.TusClient(f"{relay.url}/tus/", headers={"Authorization": f"Bearer {api.token}"})
    metadata = {"filename": "via-tuspy.bin", "md5": md5_hex(data)}
    failure: list[BaseException] = []
    try:
        with open(source, "rb") as stream:
            first = client.uploader(file_stream=stream, metadata=metadata)
            run = threading.Thread(target=lambda: _capture(first.upload, failure))
            run.start()
            assert relay.stalled.wait(60), "the upload never reached 16 MiB"
            received = relay.up  # delivered to the server, headers included
            path = "/tus/" + str(first.url).rsplit("/tus/", 1)[1]
            wait_for(lambda: staged_size(server, path) >= received - 2 * MIB, "the server to read what it was sent")
            relay.drop_connections()
            run.join(60)
        assert len(failure) == 1 and isinstance(failure[0], TusCommunicationError), failure
        wait_for(lambda: offset_of(api, path) > 0, "the server to keep what it received")
        kept = offset_of(api, path)
        assert kept >= 0.9 * received

        relay.reset()  # now it counts what the resumed upload sends
        with open(source, "rb") as stream:
            client.uploader(file_stream=stream, url=first.url, metadata=metadata).upload()
        assert relay.up <= len(data) - kept + 64 * 1024
    finally:
        relay.close()
    assert api.get("via-tuspy.bin").content == data


def _capture(call: Callable[[], object], failures: list[BaseException]) -> None:
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - the test asserts what it was
        failures.append(exc)
