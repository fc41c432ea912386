"""Integrity under stress: concurrent writers, readers during replacement, cut-off uploads."""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from tests.support.api import Api, md5_hex, partial_temp_exists, start_raw_put, temp_files
from tests.support.waiting import wait_for

if TYPE_CHECKING:
    from tests.support.live_server import LiveServer

DEADLINE = 15.0


def test_cut_off_upload_leaves_nothing(live_server: LiveServer, api: Api) -> None:
    """A PUT cut off mid-body leaves no file and no temporary blob."""
    sock = start_raw_put(api, "cut.bin", 4_000_000, os.urandom(1_500_000))
    wait_for(lambda: partial_temp_exists(live_server.data_dir), "the upload to reach the disk")
    sock.close()
    wait_for(lambda: temp_files(live_server.data_dir) == [], "the temporary blob to be removed")
    assert api.names() == []
    assert api.get("cut.bin").status_code == 404


def test_cut_off_multipart_upload_leaves_nothing(live_server: LiveServer, api: Api) -> None:
    """A multipart upload cut off mid-file leaves no file and no temporary blob."""
    parts = urlsplit(api.base)
    body_start = (
        b'--B\r\nContent-Disposition: form-data; name="md5"\r\n\r\n'
        + b"0" * 32
        + b'\r\n--B\r\nContent-Disposition: form-data; name="file"; filename="m.bin"'
        b"\r\n\r\n" + os.urandom(1_500_000)
    )
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    sock.sendall(
        (
            f"POST /upload HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Authorization: Bearer {api.token}\r\n"
            "Content-Type: multipart/form-data; boundary=B\r\n"
            "Content-Length: 4000000\r\n\r\n"
        ).encode()
        + body_start
    )
    wait_for(lambda: partial_temp_exists(live_server.data_dir), "the upload to reach the disk")
    sock.close()
    wait_for(lambda: temp_files(live_server.data_dir) == [], "the temporary blob to be removed")
    assert api.names() == []


def test_killed_server_leaves_no_temp_litter_after_restart(
    server_factory: Callable[..., LiveServer], make_api: Callable[[LiveServer], Api]
) -> None:
    """kill -9 mid-upload leaves a temporary file that the restart sweeps away."""
    server = server_factory()
    api = make_api(server)
    sock = start_raw_put(api, "doomed.bin", 4_000_000, os.urandom(1_500_000))
    try:
        wait_for(lambda: partial_temp_exists(server.data_dir), "the upload to reach the disk")
        server.stop(kill=True)
        assert temp_files(server.data_dir), "kill -9 should have left the temporary file behind"
    finally:
        sock.close()
    server.start()
    assert temp_files(server.data_dir) == []
    process_dirs = list((server.data_dir / "blobs" / "tmp").iterdir())
    assert len(process_dirs) == 1  # only the new process's own
    api = Api(server.url, api.token)
    assert api.names() == []
    assert api.upload("after.bin", b"fine")["size"] == 4


def test_startup_sweep(server_factory: Callable[..., LiveServer], make_api: Callable[[LiveServer], Api]) -> None:
    """Startup removes dead processes' temp dirs and old orphans, sparing live and recent ones."""
    server = server_factory()
    api = make_api(server)
    api.upload("kept.bin", b"referenced")
    blobs = server.data_dir / "blobs"
    hour_and_more = time.time() - 2 * 3600

    old_orphan = blobs / "ab" / ("ab" + "0" * 30)
    fresh_orphan = blobs / "cd" / ("cd" + "0" * 30)
    for orphan in (old_orphan, fresh_orphan):
        orphan.parent.mkdir(exist_ok=True)
        orphan.write_bytes(b"crashed between rename and catalog commit")
    os.utime(old_orphan, (hour_and_more, hour_and_more))

    dead = blobs / "tmp" / "999999-dead"
    dead.mkdir()
    (dead / "lock").touch()
    (dead / "x.part").write_bytes(b"in flight when the process died")
    alive = blobs / "tmp" / "999998-alive"  # another live process sharing the data dir
    alive.mkdir()
    lock = open(alive / "lock", "wb")  # noqa: SIM115
    fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
    (alive / "y.part").write_bytes(b"still being written")
    try:
        server.restart()
        assert not old_orphan.exists()
        assert fresh_orphan.exists()  # may be another process's, between rename and commit
        assert not dead.exists()
        assert (alive / "y.part").exists()
        assert Api(server.url, api.token).get("kept.bin").content == b"referenced"
    finally:
        lock.close()


def race_uploads(api: Api, name: str, contents: list[bytes]) -> list[int]:
    """PUT each of ``contents`` to ``name`` at once, all in flight together; their statuses."""
    all_half_sent = threading.Barrier(len(contents), timeout=DEADLINE)
    statuses: list[int] = []

    def body(data: bytes) -> Iterator[bytes]:
        half = len(data) // 2
        yield data[:half]
        all_half_sent.wait()  # no upload finishes before every one has started
        yield data[half:]

    def send(data: bytes) -> None:
        own = Api(api.base, api.token)  # a session per thread
        statuses.append(own.put(name, body(data)).status_code)

    threads = [threading.Thread(target=send, args=(data,)) for data in contents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
    return statuses


def test_concurrent_uploads_of_one_name_leave_one_whole_file(api: Api) -> None:
    """Two writers of one name: the survivor is one of them, whole, and its metadata matches."""
    for round_ in range(3):
        contents = [os.urandom(1_500_000), os.urandom(1_200_000)]
        assert race_uploads(api, "contested.bin", contents) == [200, 200], round_
        got = api.get("contested.bin")
        assert md5_hex(got.content) in {md5_hex(c) for c in contents}
        assert got.headers["ETag"] == f'"{md5_hex(got.content)}"'
        assert api.request("GET", "/info/contested.bin").json()["md5"] == md5_hex(got.content)
    assert api.names() == ["contested.bin"]


def test_readers_never_see_a_mix_during_replacement(live_server: LiveServer, api: Api) -> None:
    """Downloads during repeated replacement always get one whole version."""
    versions = [bytes([i]) * 2_000_000 + os.urandom(1000) for i in range(8)]
    known = {md5_hex(v) for v in versions}
    blobs_before = committed_blobs(live_server.data_dir)
    api.upload("hot.bin", versions[0])
    done = threading.Event()
    errors: list[str] = []

    def replace_repeatedly() -> None:
        try:
            for data in versions[1:] * 2:
                response = api.put("hot.bin", data)
                if response.status_code != 200:
                    errors.append(response.text)
        finally:
            done.set()

    writer = threading.Thread(target=replace_repeatedly)
    writer.start()
    reader = Api(live_server.url, api.token)
    downloads = 0
    while not done.is_set() or downloads < 3:
        response = reader.get("hot.bin")
        assert response.status_code == 200
        digest = hashlib.md5(response.content).hexdigest()
        assert digest in known
        assert response.headers["ETag"] == f'"{digest}"'
        downloads += 1
    writer.join(DEADLINE)
    assert errors == []
    assert md5_hex(reader.get("hot.bin").content) == md5_hex(versions[-1])
    # Every replaced version's blob was deleted: one file, one blob.
    assert len(committed_blobs(live_server.data_dir)) == len(blobs_before) + 1


def committed_blobs(data_dir: Path) -> list[Path]:
    """Committed blobs in a data dir (not temporaries, not the database)."""
    blobs = data_dir / "blobs"
    return [p for p in blobs.glob("??/*") if p.is_file()]
