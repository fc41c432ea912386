"""The client against a server whose disk is full: a 507 is reported once, never retried."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.full_disk import FullDisk
from updl import Client, InsufficientStorageError


@pytest.mark.parametrize("threshold", [None, 0], ids=["plain", "resumable"])
def test_sdk_does_not_retry_a_full_disk(disk: FullDisk, tmp_path: Path, threshold: int | None) -> None:
    """Plain and tus uploads both stop at the first 507: retrying cannot make room."""
    source = tmp_path / "big.bin"
    source.write_bytes(bytes(range(256)) * 4096)
    disk.fill()
    sleeps: list[float] = []
    with (
        Client(disk.server.url, disk.api.token, sleep=sleeps.append) as client,
        pytest.raises(InsufficientStorageError) as info,
    ):
        client.upload(source, retries=3, resumable_threshold=threshold)
    assert info.value.status == 507 and not info.value.retryable
    assert info.value.attempts == 1 and sleeps == []
    assert "disk is full" in str(info.value)
    assert disk.api.names() == []


def test_cli_reports_a_full_disk_in_one_line(
    disk: FullDisk, tmp_path: Path, run_updl: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    """``updl put`` exits 1 with one error line saying what to do, and no retry lines."""
    source = tmp_path / "big.bin"
    source.write_bytes(bytes(range(256)) * 4096)
    disk.fill()
    result = run_updl(disk.server, disk.api.token, "put", str(source))
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert lines[-1] == (
        "updl: error: insufficient storage: the server's disk is full; free space on the server, then try again"
    )
    assert not any("retrying" in line for line in lines), result.stderr
