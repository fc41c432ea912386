"""A damaged resume store is survived: ignored with one warning and rewritten — against a real server."""

from __future__ import annotations

import json
import os
from pathlib import Path

import updl
from tests.support.live_server import LiveServer

OTHER = b"\xff" * 5000


def test_a_damaged_resume_store_is_ignored_with_one_warning(
    live_server: LiveServer, token: str, run_updl, tmp_path: Path
) -> None:
    # Issue 8 item 7: a store that parses as JSON but holds nonsense broke every `updl get`.
    with updl.Client(live_server.url, token) as client:
        client.upload(_source(tmp_path, "x", OTHER), "x")
    store = Path(os.environ["XDG_CACHE_HOME"]) / "updl" / "resume.json"
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_text(
        json.dumps({"version": 1, "uploads": {"k": {"url": "/tus/1", "expires": "soon"}}, "downloads": {}})
    )
    result = run_updl(live_server, token, "get", "x", "-o", str(tmp_path / "x.out"))
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("updl: warning:")]
    assert len(warnings) == 1 and "resume store" in warnings[0]
    assert json.loads(store.read_text())["version"] == 2  # rewritten
    assert (tmp_path / "x.out").read_bytes() == OTHER
    again = run_updl(live_server, token, "get", "x", "-o", str(tmp_path / "x.out"))
    assert again.returncode == 0 and "warning" not in again.stderr


def _source(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / "src" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
