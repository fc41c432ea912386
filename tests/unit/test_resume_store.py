"""The resume store: keyed by file identity, expiring, safe for concurrent writers, a mere cache."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from updl.sdk.resume import ResumeStore, UploadEntry, UploadKey


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
