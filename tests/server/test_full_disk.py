"""A server whose data disk is full: reads and deletes still work, writes answer 507 and keep nothing.

The disk is real (see ``disksupport``): a small tmpfs filled with zeros until
the kernel answers ENOSPC.
"""

from __future__ import annotations

import errno

import requests
from sqlalchemy.exc import OperationalError

from tests.support.api import Api, md5_hex, temp_files
from tests.support.full_disk import FullDisk
from tests.support.racing import committed_blobs
from tests.support.tus import STREAM, TUS, create, created, staging
from updl_server.errors import out_of_space

DATA = bytes(range(256)) * 4096  # 1 MiB, every byte value
FULL = "insufficient storage: the server's disk is full"


def check_507(response: requests.Response, disk: FullDisk) -> None:
    """The 507 answer, and nothing of the refused upload left on the disk."""
    assert response.status_code == 507, response.text
    assert response.json()["error"].startswith(FULL)
    assert temp_files(disk.server.data_dir) == []


def test_reads_work_on_a_full_disk(disk: FullDisk) -> None:
    """GET, ranges, HEAD, info and lists answer as usual: a read writes nothing it needs."""
    disk.api.upload("kept.bin", DATA)
    late = Api(disk.server.url, disk.server.add_user("late"))  # its first login is a write
    disk.fill()
    got = disk.api.get("kept.bin")
    assert got.status_code == 200, got.text
    assert got.content == DATA
    ranged = disk.api.get("kept.bin", Range="bytes=10-19")
    assert (ranged.status_code, ranged.content) == (206, DATA[10:20])
    assert disk.api.request("HEAD", "/files/kept.bin").status_code == 200
    assert disk.api.request("GET", "/info/kept.bin").json()["md5"] == md5_hex(DATA)
    assert disk.api.names() == ["kept.bin"]
    assert late.names() == []


def test_uploads_on_a_full_disk_answer_507_and_keep_nothing(disk: FullDisk) -> None:
    """PUT, POST /upload and tus answer 507 (not a retryable 500) and store nothing."""
    disk.api.upload("old.bin", b"old")
    path = created(disk.api, len(DATA), "tus.bin", md5=md5_hex(DATA))
    disk.fill()
    blobs = committed_blobs(disk.server.data_dir)
    check_507(disk.api.put("new.bin", DATA), disk)
    check_507(disk.api.put("empty.bin", b""), disk)  # no blocks to write: the database refuses
    check_507(disk.api.put("old.bin", DATA), disk)
    check_507(disk.api.post_parts([("md5", md5_hex(DATA).encode()), ("file", DATA, "form.bin")]), disk)
    patch = disk.api.request("PATCH", path, data=DATA, headers={**STREAM, "Upload-Offset": "0"})
    check_507(patch, disk)
    assert patch.headers["Tus-Resumable"] == "1.0.0"
    check_507(create(disk.api, len(DATA), "tus2.bin"), disk)
    assert [p.name for p in staging(disk.server).iterdir()] == [path.rsplit("/", 1)[1]]
    assert disk.api.request("HEAD", path, headers=TUS).headers["Upload-Offset"] == "0"
    assert disk.api.names() == ["old.bin"]
    assert committed_blobs(disk.server.data_dir) == blobs
    assert disk.api.get("old.bin").content == b"old"
    disk.free()
    assert disk.api.put("new.bin", DATA).status_code == 200
    assert disk.api.get("new.bin").content == DATA


def test_deletes_work_on_a_full_disk(disk: FullDisk) -> None:
    """Deleting is the way out of a full disk, so it works there: the first delete spends the
    catalog's reserve, the next ones make it again from the space the deletes freed."""
    for name in ("a.bin", "b.bin", "c.bin"):
        disk.api.upload(name, DATA)
    path = created(disk.api, len(DATA), "tus.bin")
    reserve = disk.server.data_dir / "updl.db-reserve"
    assert reserve.stat().st_size > 0
    disk.fill()
    for name in ("a.bin", "b.bin"):
        response = disk.api.request("DELETE", f"/files/{name}")
        assert response.status_code == 204, response.text
        assert disk.api.get(name).status_code == 404
    terminated = disk.api.request("DELETE", path, headers=TUS)
    assert terminated.status_code == 204, terminated.text
    assert disk.api.request("HEAD", path, headers=TUS).status_code == 404
    assert disk.api.names() == ["c.bin"]
    disk.free()
    assert disk.api.request("DELETE", "/files/c.bin").status_code == 204
    assert reserve.stat().st_size > 0


class PgDiskFull(Exception):
    """What PostgreSQL's driver raises for a full disk: SQLSTATE 53100 (psycopg's ``DiskFull``)."""

    sqlstate = "53100"


def test_full_disk_errors_are_recognised_through_wrappers() -> None:
    """The 507 decision sees through SQLAlchemy's wrapper and ``raise ... from``; other errors
    stay 500s. (PostgreSQL cannot be filled here: its driver's error is imitated.)"""
    assert out_of_space(OSError(errno.ENOSPC, "No space left on device"))
    assert out_of_space(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert out_of_space(OperationalError("DELETE", {}, PgDiskFull("could not extend file")))
    try:
        raise RuntimeError("while writing") from OSError(errno.ENOSPC, "No space left on device")
    except RuntimeError as exc:
        assert out_of_space(exc)
    assert not out_of_space(OSError(errno.EIO, "Input/output error"))
    assert not out_of_space(OperationalError("DELETE", {}, Exception("server closed the connection")))
