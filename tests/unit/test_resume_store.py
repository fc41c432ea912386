"""The resume store: keyed by file identity, expiring, safe for concurrent writers, a mere cache."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

import pytest

from updl.sdk.resume import DownloadEntry, DownloadKey, ResumeStore, UploadEntry, UploadKey


def key(path: Path, name: str = "big.bin") -> UploadKey:
    return UploadKey.for_file("http://server", name, path)


def test_entry_follows_the_file_identity(tmp_path: Path) -> None:
    store = ResumeStore(tmp_path / "cache" / "resume.json")
    source = tmp_path / "big.bin"
    source.write_bytes(b"x" * 10)
    store.remember_upload(key(source), UploadEntry("/tus/abc", time.time() + 60))
    entry = store.upload(key(source))
    assert entry is not None and entry.url == "/tus/abc"
    assert store.upload(key(source, "other-name")) is None
    os.utime(source, ns=(1, 1))  # touched: a different file as far as resuming goes
    assert store.upload(key(source)) is None


def test_expired_entries_are_dropped(tmp_path: Path) -> None:
    store = ResumeStore(tmp_path / "resume.json")
    source = tmp_path / "f"
    source.write_bytes(b"1")
    store.remember_upload(key(source), UploadEntry("/tus/old", time.time() - 1))
    assert store.upload(key(source)) is None


def test_corrupt_store_is_an_empty_cache(tmp_path: Path) -> None:
    path = tmp_path / "resume.json"
    path.write_text("{not json")
    store = ResumeStore(path)
    source = tmp_path / "f"
    source.write_bytes(b"1")
    assert store.upload(key(source)) is None
    store.remember_upload(key(source), UploadEntry("/tus/new", time.time() + 60))
    assert store.upload(key(source)) is not None


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "resume.json"
    sources = []
    for i in range(40):
        source = tmp_path / f"f{i}"
        source.write_bytes(b"1")
        sources.append(source)

    def write(chunk: list[Path]) -> None:
        store = ResumeStore(path)  # one store per thread, like one per process
        for source in chunk:
            store.remember_upload(key(source), UploadEntry(f"/tus/{source.name}", time.time() + 60))

    threads = [threading.Thread(target=write, args=(sources[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store = ResumeStore(path)
    assert all(store.upload(key(source)) is not None for source in sources)
    assert [p.name for p in tmp_path.glob(".resume-*")] == []  # no temporaries left behind


DAMAGED = {
    "not JSON": b"{not json",
    "not UTF-8": b"\xff\xfe{}",
    "not an object": b"[1, 2]",
    "an expiry that is not a number": json.dumps(
        {"version": 1, "uploads": {"k": {"url": "/tus/1", "expires": "soon"}}}
    ).encode(),
    "a section that is not an object": json.dumps({"version": 2, "uploads": "ab", "downloads": {}}).encode(),
    "an entry without its fields": json.dumps({"version": 2, "uploads": {"k": {}}, "downloads": {}}).encode(),
    "a temporary file outside the destination's directory": json.dumps(
        {
            "version": 2,
            "uploads": {},
            "downloads": {"k": {"part": "../../etc/passwd", "device": 1, "inode": 2, "etag": None, "expires": 4e9}},
        }
    ).encode(),
    "an unknown version": json.dumps({"version": 99}).encode(),
}


@pytest.mark.parametrize("content", DAMAGED.values(), ids=DAMAGED.keys())
def test_a_damaged_store_is_ignored_with_one_warning_and_rewritten(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "resume.json"
    path.write_bytes(content)
    store = ResumeStore(path)
    source = tmp_path / "f"
    source.write_bytes(b"1")
    with caplog.at_level(logging.WARNING, logger="updl"):
        assert store.upload(key(source)) is None
        assert ResumeStore(path).download(DownloadKey("http://server", "f", str(source))) is None
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "resume store" in caplog.records[0].getMessage()
    assert json.loads(path.read_text()) == {"version": 2, "uploads": {}, "downloads": {}}


def test_a_version_1_store_keeps_its_uploads(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "resume.json"
    source = tmp_path / "f"
    source.write_bytes(b"1")
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "uploads": {key(source).text(): {"url": "/tus/old", "expires": time.time() + 60}},
                "downloads": {"/x.part": {"etag": "e"}},
            }
        )
    )
    with caplog.at_level(logging.WARNING, logger="updl"):
        entry = ResumeStore(path).upload(key(source))
    assert entry is not None and entry.url == "/tus/old" and caplog.records == []


def test_download_entries_round_trip(tmp_path: Path) -> None:
    store = ResumeStore(tmp_path / "resume.json")
    target = DownloadKey.for_target("http://server", "a/b", tmp_path / "b")
    store.remember_download(target, DownloadEntry(".b.updl-1.part", 1, 2, '"etag"'))
    assert store.download(target) == DownloadEntry(".b.updl-1.part", 1, 2, '"etag"')
    store.forget_download(target, ".b.updl-other.part")  # not the entry's file: kept
    assert store.download(target) is not None
    store.forget_download(target, ".b.updl-1.part")
    assert store.download(target) is None
