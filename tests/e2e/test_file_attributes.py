"""Mode and mtime: recorded on upload (multipart, PUT, tus), returned by info/HEAD, restored by get."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

import updl
from tests.support.live_server import LiveServer
from updl.sdk import ranged
from updl.sdk.attributes import umask
from updl.sdk.config import load_settings

MIB = 1024 * 1024
MTIME_NS = 1_700_000_000_123_456_000  # 2023-11-14T22:13:20.123456Z, microsecond precision


def _prepared(path: Path, mode: int) -> Path:
    path.chmod(mode)
    os.utime(path, ns=(MTIME_NS, MTIME_NS))
    return path


def _umask() -> int:
    return umask()


@pytest.mark.parametrize("threshold", [None, 0], ids=["multipart", "tus"])
def test_exec_bit_and_mtime_survive_put_and_get(
    live_server: LiveServer, token: str, make_file, tmp_path: Path, threshold: int | None
) -> None:
    source = _prepared(make_file("tool.sh", 70_000), 0o755)
    with updl.Client(live_server.url, token) as client:
        stored = client.upload(source, "bin/tool.sh", resumable_threshold=threshold)
        info = client.info("bin/tool.sh")
        head = client.head("bin/tool.sh")
        fetched = client.download("bin/tool.sh", tmp_path / "out" / "tool.sh")
    assert info.mode == 0o755 and info.mtime == datetime.fromtimestamp(MTIME_NS / 1e9, UTC)
    assert stored.mode == 0o755
    assert head is not None and (head.mode, head.mtime) == (info.mode, info.mtime)
    assert (fetched.mode, fetched.mtime) == (info.mode, info.mtime)
    written = (tmp_path / "out" / "tool.sh").stat()
    assert stat.S_IMODE(written.st_mode) == 0o755 & ~_umask()
    assert written.st_mode & stat.S_IXUSR
    assert written.st_mtime_ns == MTIME_NS


def test_no_preserve_neither_records_nor_restores(
    live_server: LiveServer, token: str, make_file, tmp_path: Path
) -> None:
    source = _prepared(make_file("run.sh", 1000), 0o700)
    with updl.Client(live_server.url, token) as client:
        client.upload(source, "plain", preserve=False)
        assert (client.info("plain").mode, client.info("plain").mtime) == (None, None)
        client.upload(source, "kept")
        client.download("kept", tmp_path / "kept", preserve=False)
    written = (tmp_path / "kept").stat()
    assert stat.S_IMODE(written.st_mode) == 0o666 & ~_umask()
    assert written.st_mtime_ns != MTIME_NS


def test_cli_put_info_get_and_no_preserve(
    live_server: LiveServer, token: str, make_file, run_updl, tmp_path: Path
) -> None:
    source = _prepared(make_file("deploy", 5000), 0o750)
    put = run_updl(live_server, token, "--json", "put", str(source))
    assert put.returncode == 0, put.stderr
    record = json.loads(put.stdout.splitlines()[0])
    assert record["mode"] == "0750" and record["mtime"] == "2023-11-14T22:13:20.123456Z"
    info = run_updl(live_server, token, "info", "deploy")
    assert "mode" in info.stdout and "0750" in info.stdout, info.stdout
    assert run_updl(live_server, token, "-q", "get", "deploy", cwd=tmp_path).returncode == 0
    assert stat.S_IMODE((tmp_path / "deploy").stat().st_mode) == 0o750 & ~_umask()
    assert (tmp_path / "deploy").stat().st_mtime_ns == MTIME_NS
    other = tmp_path / "other"
    other.mkdir()
    got = run_updl(live_server, token, "-q", "get", "deploy", "--no-preserve", cwd=other)
    assert got.returncode == 0, got.stderr
    assert not (other / "deploy").stat().st_mode & stat.S_IXUSR


def test_raw_put_headers_and_bounds(live_server: LiveServer, token: str) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    url = f"{live_server.url}/files/raw"
    ok = requests.put(url, data=b"x", headers={**auth, "Updl-Mode": "644", "Updl-Mtime": "2020-01-02T03:04:05Z"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["mode"] == "0644" and ok.json()["mtime"] == "2020-01-02T03:04:05.000000Z"
    head = requests.head(url, headers=auth)
    assert head.headers["Updl-Mode"] == "0644" and head.headers["Updl-Mtime"].startswith("2020-01-02T03:04:05")
    for header, value in [
        ("Updl-Mode", "4755"),
        ("Updl-Mode", "rwx"),
        ("Updl-Mtime", "yesterday"),
        ("Updl-Mtime", "9" * 80),
    ]:
        bad = requests.put(url, data=b"y", headers={**auth, header: value})
        assert bad.status_code == 400, (header, value, bad.text)
        assert "error" in bad.json()
    assert requests.get(url, headers=auth).content == b"x"  # nothing replaced by a refused upload


def test_multipart_fields_are_validated(live_server: LiveServer, token: str) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    files: dict[str, tuple[str | None, bytes]] = {
        "name": (None, b"m"),
        "mode": (None, b"99"),
        "file": ("m", b"abc"),
        "md5": (None, b"900150983cd24fb0d6963f7d28e17f72"),
    }
    bad = requests.post(f"{live_server.url}/upload", files=files, headers=auth)
    assert bad.status_code == 400 and "mode" in bad.json()["error"]


def test_parallel_parts_and_ranged_download_keep_mode_and_mtime(
    live_server: LiveServer, token: str, make_file, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ranged, "PARALLEL_MIN_SIZE", MIB)  # the real 64 MiB would make the test slow
    monkeypatch.setattr(ranged, "PARALLEL_MIN_RTT", 0.0)  # and loopback would be one stream
    source = _prepared(make_file("big.sh", 3 * MIB + 5), 0o750)
    settings = replace(load_settings(live_server.url, token), resumable_chunk_size=MIB, download_connections=3)
    with updl.Client(settings=settings) as client:
        stored = client.upload(source, "bin/big.sh", resumable_threshold=0, parts=3)
        fetched = client.download("bin/big.sh", tmp_path / "big.sh")
    expected = (0o750, datetime.fromtimestamp(MTIME_NS / 1e9, UTC))
    assert (stored.mode, stored.mtime) == expected
    assert (fetched.mode, fetched.mtime) == expected
    written = (tmp_path / "big.sh").stat()
    assert stat.S_IMODE(written.st_mode) == 0o750 & ~_umask()
    assert written.st_mtime_ns == MTIME_NS
