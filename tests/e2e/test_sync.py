"""``updl sync`` against a real server: only what differs moves, both ways; --delete and its threshold."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import updl
from tests.support.live_server import LiveServer
from tests.support.relay import Relay
from updl.sdk.attributes import umask
from updl.sdk.sync import plan_download_sync, plan_upload_sync, run_sync

MTIME_NS = 1_600_000_000_000_000_000


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root


def _content(i: int, size: int = 3000) -> bytes:
    return (f"file {i:04d} ".encode() * size)[:size]


def _records(stdout: str) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    lines = [json.loads(line) for line in stdout.splitlines()]
    summary = lines[-1]["summary"]
    return {r["name"]: r for r in lines[:-1]}, summary


def _statuses(records: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: r["status"] for name, r in records.items()}


def test_sync_up_then_down_moves_only_what_changed(
    live_server: LiveServer, token: str, run_updl, tmp_path: Path
) -> None:
    src = _tree(tmp_path / "dist", {f"d{i % 2}/f{i}.bin": _content(i) for i in range(6)})
    first = run_updl(live_server, token, "--json", "sync", str(src), "remote:build/42/")
    assert first.returncode == 0, first.stderr
    records, summary = _records(first.stdout)
    assert set(_statuses(records).values()) == {"uploaded"} and summary["uploaded"] == 6
    assert sorted(records) == sorted(f"build/42/d{i % 2}/f{i}.bin" for i in range(6))

    (src / "d0/f0.bin").write_bytes(_content(100))  # same size, other bytes: only the MD5 tells
    (src / "d1/f1.bin").write_bytes(_content(1, 10))  # another size
    (src / "new.txt").write_bytes(b"new")
    os.utime(src / "d0/f2.bin", ns=(MTIME_NS, MTIME_NS))  # a new mtime alone is not a change
    relay = Relay(int(live_server.url.rsplit(":", 1)[1]))
    second = run_updl(live_server, token, "--json", "sync", str(src), "remote:build/42", url=relay.url)
    assert second.returncode == 0, second.stderr
    records, summary = _records(second.stdout)
    changed = {"build/42/d0/f0.bin", "build/42/d1/f1.bin", "build/42/new.txt"}
    assert {n for n, s in _statuses(records).items() if s == "uploaded"} == changed
    assert {n for n, s in _statuses(records).items() if s == "skipped"} == {
        f"build/42/d{i % 2}/f{i}.bin" for i in range(2, 6)
    }
    assert (summary["uploaded"], summary["skipped"], summary["bytes"]) == (3, 4, 3000 + 10 + 3)
    assert relay.up < 3 * 3000 + 64 * 1024  # the unchanged 12,000 bytes were not sent

    out = tmp_path / "out"
    down = run_updl(live_server, token, "--json", "sync", "remote:build/42/", str(out))
    assert down.returncode == 0, down.stderr
    records, summary = _records(down.stdout)
    assert summary["downloaded"] == 7
    for path in src.rglob("*"):
        if path.is_file():
            assert (out / path.relative_to(src)).read_bytes() == path.read_bytes()

    (out / "d0/f2.bin").write_bytes(_content(200))  # a local edit, same size
    relay.reset()
    again = run_updl(live_server, token, "--json", "sync", "remote:build/42/", str(out), url=relay.url)
    assert again.returncode == 0, again.stderr
    records, summary = _records(again.stdout)
    assert {n for n, s in _statuses(records).items() if s == "downloaded"} == {"build/42/d0/f2.bin"}
    assert (summary["downloaded"], summary["skipped"]) == (1, 6)
    assert relay.down < 3000 + 64 * 1024  # local files with the right digest were not fetched again
    assert (out / "d0/f2.bin").read_bytes() == (src / "d0/f2.bin").read_bytes()


def test_delete_lists_first_and_needs_force_over_the_threshold(
    live_server: LiveServer, token: str, run_updl, tmp_path: Path
) -> None:
    src = _tree(tmp_path / "src", {f"f{i:02d}": _content(i, 100) for i in range(20)})
    assert run_updl(live_server, token, "-q", "sync", str(src), "remote:t/").returncode == 0
    (src / "f00").unlink()
    one = run_updl(live_server, token, "sync", "--delete", str(src), "remote:t/")
    assert one.returncode == 0, one.stderr
    assert "will delete 1 files" in one.stderr and "t/f00" in one.stderr
    assert "deleted t/f00" in one.stdout
    with updl.Client(live_server.url, token) as client:
        assert len(client.list("t/")) == 19

    for i in range(1, 16):  # 15 of 19 gone: more than 10 and more than 10%
        (src / f"f{i:02d}").unlink()
    dry = run_updl(live_server, token, "--json", "sync", "--delete", "--dry-run", str(src), "remote:t/")
    assert dry.returncode == 0, dry.stderr
    records, summary = _records(dry.stdout)
    assert sum(r["status"] == "would delete" for r in records.values()) == 15
    assert summary["deletions"] == 15 and summary["deletions_refused"] is True
    refused = run_updl(live_server, token, "sync", "--delete", str(src), "remote:t/")
    assert refused.returncode == 12, refused.stderr
    assert "--force" in refused.stderr
    with updl.Client(live_server.url, token) as client:
        assert len(client.list("t/")) == 19  # nothing deleted
    forced = run_updl(live_server, token, "--json", "sync", "--delete", "--force", str(src), "remote:t/")
    assert forced.returncode == 0, forced.stderr
    assert _records(forced.stdout)[1]["deleted"] == 15
    with updl.Client(live_server.url, token) as client:
        assert [f.name for f in client.list("t/")] == [f"t/f{i:02d}" for i in range(16, 20)]


def test_download_delete_keeps_excluded_and_partial_files(live_server: LiveServer, token: str, tmp_path: Path) -> None:
    src = _tree(tmp_path / "src", {"a.txt": b"a", "b.txt": b"b"})
    out = _tree(
        tmp_path / "out", {"a.txt": b"a", "stale.txt": b"old", "keep.log": b"log", ".x.updl-0123abcd.part": b""}
    )
    with updl.Client(live_server.url, token) as client:
        run_sync(client, plan_upload_sync(client, src, "p"))
        plan = plan_download_sync(client, "p/", out, exclude=["*.log"])
        assert [t.relative for t in plan.transfers] == ["b.txt"]
        assert [t.relative for t in plan.deletions] == ["stale.txt"]
        outcomes = run_sync(client, plan, delete=True)
    assert sorted((o.task.relative, o.status) for o in outcomes) == [
        ("a.txt", "skipped"),
        ("b.txt", "downloaded"),
        ("stale.txt", "deleted"),
    ]
    assert sorted(p.name for p in out.iterdir()) == [".x.updl-0123abcd.part", "a.txt", "b.txt", "keep.log"]


def test_exec_bit_and_mtime_survive_a_sync_round_trip(
    live_server: LiveServer, token: str, run_updl, tmp_path: Path
) -> None:
    src = _tree(tmp_path / "src", {"bin/run": b"#!/bin/sh\necho hi\n", "README": b"read me\n"})
    (src / "bin/run").chmod(0o755)
    os.utime(src / "bin/run", ns=(MTIME_NS, MTIME_NS))
    assert run_updl(live_server, token, "-q", "sync", str(src), "remote:rt/").returncode == 0
    out = tmp_path / "out"
    assert run_updl(live_server, token, "-q", "sync", "remote:rt/", str(out)).returncode == 0
    assert stat.S_IMODE((out / "bin/run").stat().st_mode) == 0o755 & ~umask()
    assert (out / "bin/run").stat().st_mtime_ns == MTIME_NS
    assert not (out / "README").stat().st_mode & stat.S_IXUSR

    (out / "bin/run").chmod(0o644)  # right content, wrong mode: fixed without a download
    again = run_updl(live_server, token, "--json", "sync", "remote:rt/", str(out))
    assert _records(again.stdout)[1]["downloaded"] == 0
    assert stat.S_IMODE((out / "bin/run").stat().st_mode) == 0o755 & ~umask()

    plain = tmp_path / "plain"
    assert run_updl(live_server, token, "-q", "sync", "--no-preserve", "remote:rt/", str(plain)).returncode == 0
    assert not (plain / "bin/run").stat().st_mode & stat.S_IXUSR


def test_sync_arguments(live_server: LiveServer, token: str, run_updl, tmp_path: Path) -> None:
    both_local = run_updl(live_server, token, "sync", str(tmp_path), str(tmp_path / "x"))
    assert both_local.returncode == 2 and "remote:PREFIX" in both_local.stderr
    both_remote = run_updl(live_server, token, "sync", "remote:a/", "remote:b/")
    assert both_remote.returncode == 2
    missing = run_updl(live_server, token, "sync", str(tmp_path / "nope"), "remote:a/")
    assert missing.returncode == 2 and "not a directory" in missing.stderr
    dry = run_updl(live_server, token, "sync", "--dry-run", str(_tree(tmp_path / "d", {"x": b"x"})), "remote:dr/")
    assert dry.returncode == 0 and "would upload" in dry.stdout
    with updl.Client(live_server.url, token) as client:
        assert client.list("dr/") == []
