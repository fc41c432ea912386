"""wget against the real server: a download, and ``wget -c`` continuing a partial one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.api import url_name
from tests.support.interop import MIB, require_tool, run_tool, same_bytes, write_prefix
from tests.support.live_server import LiveServer


def wget(server: LiveServer, token: str, name: str, cwd: Path, *args: str) -> str:
    """Run ``wget -S`` for ``name`` in ``cwd`` (it saves under the URL's last segment); its log."""
    result = run_tool(
        require_tool("wget"),
        "-S",
        "--no-verbose",
        "--tries=1",
        "--header",
        f"Authorization: Bearer {token}",
        *args,
        f"{server.url}/files/{url_name(name)}",
        cwd=cwd,
    )
    assert result.returncode == 0, result.stderr
    return result.stderr  # -S prints the server's response headers there


def test_wget_downloads_the_stored_bytes(live_server: LiveServer, token: str, stored, tmp_path: Path) -> None:
    source = stored("dir/w.bin", 2 * MIB + 9)
    log = wget(live_server, token, "dir/w.bin", tmp_path)
    assert "HTTP/1.1 200" in log
    assert same_bytes(tmp_path / "w.bin", source)


@pytest.mark.parametrize("have", [1, 2 * MIB, 3 * MIB + 4])
def test_wget_c_continues_a_partial_download(
    live_server: LiveServer, token: str, stored, tmp_path: Path, have: int
) -> None:
    source = stored("w.bin", 3 * MIB + 5)
    size = source.stat().st_size
    write_prefix(source, tmp_path / "w.bin", have)
    log = wget(live_server, token, "w.bin", tmp_path, "-c")
    # A 206 for the rest proves wget continued; a 200 would mean it fetched everything again.
    assert "HTTP/1.1 206" in log
    assert f"Content-Range: bytes {have}-{size - 1}/{size}".lower() in log.lower()
    assert same_bytes(tmp_path / "w.bin", source)


def test_wget_c_on_a_complete_file_changes_nothing(live_server: LiveServer, token: str, stored, tmp_path: Path) -> None:
    source = stored("done.bin", MIB + 5)
    shutil.copyfile(source, tmp_path / "done.bin")
    log = wget(live_server, token, "done.bin", tmp_path, "-c")
    assert "HTTP/1.1 416" in log  # wget takes it to mean: nothing left to fetch
    assert same_bytes(tmp_path / "done.bin", source)
