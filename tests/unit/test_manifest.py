"""Manifests in md5sum/sha256sum format: written so coreutils accept them, read back, verified."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from updl.sdk.errors import ChecksumMismatchError, ManifestError, MissingFilesError
from updl.sdk.hashing import digest_file
from updl.sdk.manifest import (
    Entry,
    format_line,
    parse_manifest,
    read_manifest,
    verify_manifest,
    write_manifest,
)

ODD_NAMES = ["plain.txt", "back\\slash.txt", "new\nline.txt", "carriage\rreturn.txt", "ünï cödé.txt"]


def write_files(root: Path) -> list[Entry]:
    entries = []
    for i, name in enumerate(ODD_NAMES):
        data = f"file {i}".encode()
        (root / name).write_bytes(data)
        entries.append(Entry(hashlib.md5(data).hexdigest(), name))
    return entries


def test_escaping_like_gnu_coreutils() -> None:
    assert format_line("ab" * 16, "a b.txt") == f"{'ab' * 16}  a b.txt\n"
    assert format_line("ab" * 16, "x\\y\nz") == f"\\{'ab' * 16}  x\\\\y\\nz\n"


@pytest.mark.skipif(shutil.which("md5sum") is None, reason="GNU coreutils not installed")
def test_md5sum_accepts_what_we_write_and_we_read_what_it_writes(tmp_path: Path) -> None:
    entries = write_files(tmp_path)
    write_manifest(tmp_path / "MD5SUMS", entries)
    check = subprocess.run(["md5sum", "-c", "MD5SUMS"], cwd=tmp_path, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    theirs = subprocess.run(["md5sum", *ODD_NAMES], cwd=tmp_path, capture_output=True, check=True)
    (tmp_path / "THEIRS").write_bytes(theirs.stdout)
    assert sorted(read_manifest(tmp_path / "THEIRS"), key=lambda e: e.path) == sorted(entries, key=lambda e: e.path)


def test_sha256_detected_by_length_and_binary_marker_read(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc")
    digests = digest_file(tmp_path / "f", ("md5", "sha256"))
    assert digests["sha256"] == hashlib.sha256(b"abc").hexdigest()
    entries = parse_manifest([f"{digests['sha256'].upper()} *f\n"])
    assert entries == [Entry(digests["sha256"], "f")] and entries[0].algorithm == "sha256"
    (tmp_path / "SUMS").write_text(f"{digests['sha256']}  f\n")
    assert [r.status for r in verify_manifest(tmp_path / "SUMS", tmp_path)] == ["OK"]


def test_unreadable_or_mixed_manifests_are_refused() -> None:
    with pytest.raises(ManifestError, match="line 2"):
        parse_manifest([f"{'a' * 32}  ok\n", "garbage\n"])
    with pytest.raises(ManifestError, match="mixes"):
        parse_manifest([f"{'a' * 32}  x\n", f"{'b' * 64}  y\n"])
    with pytest.raises(ManifestError, match="line 1"):
        parse_manifest([f"{'a' * 31}  short\n"])


def test_verify_reports_ok_failed_missing(tmp_path: Path) -> None:
    entries = write_files(tmp_path)
    write_manifest(tmp_path / "SUMS", entries)
    (tmp_path / "plain.txt").write_bytes(b"changed")
    (tmp_path / "ünï cödé.txt").unlink()
    seen: list[tuple[str, str]] = []
    with pytest.raises(ChecksumMismatchError, match=r"1 of 5 files .* FAILED verification \(1 missing\)"):
        verify_manifest(tmp_path / "SUMS", tmp_path, on_result=lambda r: seen.append((r.entry.path, r.status)))
    assert dict(seen) == {
        "plain.txt": "FAILED",
        "ünï cödé.txt": "MISSING",
        "back\\slash.txt": "OK",
        "new\nline.txt": "OK",
        "carriage\rreturn.txt": "OK",
    }
    (tmp_path / "plain.txt").write_bytes(b"file 0")
    with pytest.raises(MissingFilesError, match=r"1 of 5 files .* MISSING"):
        verify_manifest(tmp_path / "SUMS", tmp_path)
