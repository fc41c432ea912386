"""aria2c against the real server: a download, one split into several ranges, a resumed one."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.api import url_name
from tests.support.interop import MIB, md5_hex, require_tool, run_tool, same_bytes, write_prefix
from tests.support.live_server import LiveServer


def aria2c(server: LiveServer, token: str, name: str, dest: Path, *args: str) -> str:
    """Download ``name`` to ``dest`` with aria2c; return its debug log (every request it sent)."""
    log = dest.parent / "aria2c.log"
    result = run_tool(
        require_tool("aria2c"),
        "--quiet",
        "--max-tries=1",
        "--allow-overwrite=true",
        "--auto-file-renaming=false",
        "--log",
        str(log),
        "--log-level=debug",
        f"--header=Authorization: Bearer {token}",
        "--dir",
        str(dest.parent),
        "--out",
        dest.name,
        *args,
        f"{server.url}/files/{url_name(name)}",
    )
    assert result.returncode == 0, result.stdout + result.stderr + log.read_text(errors="replace")
    return log.read_text(errors="replace")


def ranges_requested(log: str) -> list[str]:
    """The ``Range`` headers of the GET requests in an aria2c debug log."""
    return re.findall(r"^Range: (bytes=\S*)", log, flags=re.MULTILINE)


def test_aria2c_downloads_the_stored_bytes(live_server: LiveServer, token: str, stored, tmp_path: Path) -> None:
    source = stored("a/plain.bin", 2 * MIB + 1)
    dest = tmp_path / "out" / "plain.bin"
    dest.parent.mkdir()
    # --checksum: aria2c itself verifies the MD5 the server advertised for these bytes.
    aria2c(live_server, token, "a/plain.bin", dest, f"--checksum=md5={md5_hex(source)}")
    assert same_bytes(dest, source)


def test_aria2c_split_download_fetches_several_ranges(
    live_server: LiveServer, token: str, stored, tmp_path: Path
) -> None:
    source = stored("split.bin", 8 * MIB + 3)
    dest = tmp_path / "out" / "split.bin"
    dest.parent.mkdir()
    # -k 1M: aria2c splits only a file bigger than twice --min-split-size (20M by default).
    log = aria2c(live_server, token, "split.bin", dest, "-x", "4", "-s", "4", "-k", "1M")
    assert same_bytes(dest, source)
    starts = {int(r.removeprefix("bytes=").split("-")[0]) for r in ranges_requested(log)}
    # At least one segment fetched on its own from the middle of the file. (Usually three; how
    # many depends on how fast the first connection runs ahead, so the test does not count them.)
    assert starts - {0}, f"expected ranged requests for later segments, got {sorted(starts)}"


def test_aria2c_continues_a_partial_download(live_server: LiveServer, token: str, stored, tmp_path: Path) -> None:
    source = stored("cont.bin", 3 * MIB + 5)
    dest = tmp_path / "out" / "cont.bin"
    dest.parent.mkdir()
    write_prefix(source, dest, 2 * MIB)
    log = aria2c(live_server, token, "cont.bin", dest, "--continue=true")
    assert same_bytes(dest, source)
    # Only the missing part was asked for (aria2c names the end of the range too).
    assert [r.split("-")[0] for r in ranges_requested(log)] == [f"bytes={2 * MIB}"]
