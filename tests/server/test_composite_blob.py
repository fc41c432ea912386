"""The local store's composite blobs (a tus concatenation's parts, joined by renames): read, delete, sweep."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from updl_server.storage import BlobNotFoundError, LocalBlobStore

PIECES = [b"0123456789", b"", b"abcdef", b"XYZ" * 1000]
WHOLE = b"".join(PIECES)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalBlobStore]:
    blobs = LocalBlobStore(tmp_path / "blobs", chunk_size=7, orphan_grace=0.0)
    blobs.start()
    yield blobs
    blobs.close()  # releases the process lock file


def joined(store: LocalBlobStore) -> str:
    ids = []
    for number, piece in enumerate(PIECES):
        upload_id = f"{number:032x}"
        store.staging.create(upload_id)
        held = store.staging.claim(upload_id)
        held.append(piece)
        held.sync()
        ids.append(held)
    try:
        return store.staging.concatenate(ids, 0)
    finally:
        for held in ids:
            held.close()


@pytest.mark.parametrize(
    ("start", "end"), [(0, None), (0, 10), (5, 12), (10, 16), (9, 17), (15, len(WHOLE)), (20, 20), (len(WHOLE), None)]
)
def test_every_range_reads_across_the_segments(store: LocalBlobStore, start: int, end: int | None) -> None:
    location = joined(store)
    assert b"".join(store.open(location, start, end)) == WHOLE[start:end]
    assert list(store.staging.root.iterdir()) == []  # the part files moved into the blob


def test_delete_and_sweep_remove_the_whole_directory(store: LocalBlobStore) -> None:
    kept, orphan = joined(store), joined(store)
    reader = store.open(kept)  # opened before the delete: still readable after it (POSIX)
    store.delete(kept)
    assert b"".join(reader) == WHOLE
    with pytest.raises(BlobNotFoundError):
        store.open(kept)
    report = store.sweep(lambda location: False)
    assert report.orphan_blobs == 1
    with pytest.raises(BlobNotFoundError):
        store.open(orphan)
    assert not any(p.is_dir() for p in (store.root).glob("??/*"))
    assert os.listdir(store.process_dir) == ["lock"]  # nothing left half-built
