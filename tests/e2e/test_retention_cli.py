"""``updl put --expires``, ``updl rm --prefix``, quotas in ``updl du`` and exit 11, through the SDK and the script."""

from __future__ import annotations

import io
import json
import subprocess
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import updl
from tests.support.live_server import LiveServer
from tests.support.retention import expire, set_quota
from updl.sdk.models import FileInfo
from updl.sdk.retention import parse_duration, selected_for_removal

Run = Callable[..., subprocess.CompletedProcess[str]]
ServerFactory = Callable[..., LiveServer]


def records(result: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def _user(server: LiveServer) -> tuple[str, str]:
    name = f"cli-{uuid.uuid4().hex[:10]}"
    return name, server.add_user(name)


def test_put_expires_shows_in_info(live_server: LiveServer, token: str, run_updl: Run, tmp_path: Path) -> None:
    """``put --expires 14d`` (multipart and tus): ``info`` shows when; the SDK takes a timedelta."""
    source = tmp_path / "a.txt"
    source.write_bytes(b"a" * 100)
    put = run_updl(live_server, token, "put", "--expires", "14d", str(source))
    assert put.returncode == 0, put.stderr
    info = records(run_updl(live_server, token, "--json", "info", "a.txt"))[0]
    assert isinstance(info["expires"], str) and isinstance(info["created"], str)
    kept = datetime.fromisoformat(info["expires"]) - datetime.fromisoformat(info["created"])
    assert kept == timedelta(days=14)
    assert run_updl(live_server, token, "put", str(source), "--name", "b").returncode == 0
    assert "expires:       never" in run_updl(live_server, token, "info", "b").stdout
    with updl.Client(live_server.url, token) as client:
        resumable = client.upload(source, "t.txt", expires_in=timedelta(hours=1), resumable_threshold=0)
        assert resumable.expires is not None  # from the completing answer's Updl-Expires
        stored = client.info("t.txt")
        assert stored.expires is not None and stored.expires - stored.created == timedelta(hours=1)
        with pytest.raises(ValueError):
            client.upload(source, "bad", expires_in=0)
    bad = run_updl(live_server, token, "put", "--expires", "soon", str(source))
    assert bad.returncode == 2 and "not a duration" in bad.stderr


def test_rm_prefix_dry_run_then_delete(live_server: LiveServer, token: str, run_updl: Run) -> None:
    """``--dry-run`` lists and deletes nothing; ``--prefix`` alone deletes the whole prefix and says how many."""
    with updl.Client(live_server.url, token) as client:
        for name in ["logs/a", "logs/b", "logs2/c", "keep"]:
            client.upload(_bytes(name), name)
        dry = records(run_updl(live_server, token, "--json", "rm", "--prefix", "logs/", "--dry-run"))
        assert [(r["name"], r["deleted"]) for r in dry] == [("logs/a", False), ("logs/b", False)]
        assert len(client.list()) == 4
        done = run_updl(live_server, token, "rm", "--prefix", "logs/")
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["deleted logs/a", "deleted logs/b"]
        assert "deleted 2 files" in done.stderr
        assert [f.name for f in client.list()] == ["keep", "logs2/c"]
        young = run_updl(live_server, token, "rm", "--prefix", "logs2/", "--older-than", "30d")
        assert young.returncode == 0 and "deleted 0 files" in young.stderr
        assert [f.name for f in client.list()] == ["keep", "logs2/c"]
    for args in (["rm", "--prefix", ""], ["rm", "keep", "--prefix", "k"], ["rm", "--dry-run", "keep"], ["rm"]):
        assert run_updl(live_server, token, *args).returncode == 2, args


def _bytes(name: str) -> io.BytesIO:
    return io.BytesIO(name.encode())


def test_older_than_selects_by_creation_time() -> None:
    now = datetime(2026, 12, 4, tzinfo=UTC)
    files = [FileInfo(n, 1, "0" * 32, now - timedelta(days=d)) for n, d in [("new", 1), ("old", 40), ("edge", 30)]]
    assert [f.name for f in selected_for_removal(files, parse_duration("30d"), now)] == ["old"]
    assert len(selected_for_removal(files, None, now)) == 3
    assert parse_duration("2w") == 14 * 86400 and parse_duration("90m") == 5400 and parse_duration("45") == 45
    for text in ("", "0", "5y", "-1d"):
        with pytest.raises(ValueError):
            parse_duration(text)


def test_quota_in_du_and_exit_code(server_factory: ServerFactory, run_updl: Run, tmp_path: Path) -> None:
    """``du`` shows usage against the quota; a refused upload exits 10 and says what to do; nothing stored."""
    server = server_factory()
    name, token = _user(server)
    set_quota(server, name, "--bytes", "1000", "--files", "10")
    source = tmp_path / "big.bin"
    source.write_bytes(b"b" * 800)
    assert run_updl(server, token, "put", str(source)).returncode == 0
    du = run_updl(server, token, "du")
    assert du.returncode == 0, du.stderr
    assert "quota: 800 B of 1000 B used (80%)" in du.stdout and "quota: 1 of 10 files" in du.stdout
    usage = records(run_updl(server, token, "--json", "du"))[0]
    assert usage["quota_bytes"] == 1000 and usage["used_bytes"] == 800
    again = run_updl(server, token, "put", str(source), "--name", "second.bin")
    assert again.returncode == 11, again.stderr
    assert "quota" in again.stderr and "nothing was stored" in again.stderr
    with updl.Client(server.url, token) as client:
        with pytest.raises(updl.QuotaExceededError) as refused:
            client.upload(source, "third.bin", resumable_threshold=0)
        assert refused.value.quota_bytes == 1000 and refused.value.used_bytes == 800
        assert refused.value.attempts == 1  # not retried
        assert [f.name for f in client.list()] == ["big.bin"]


def test_expired_file_is_gone_for_the_cli(server_factory: ServerFactory, run_updl: Run, tmp_path: Path) -> None:
    server = server_factory()
    _, token = _user(server)
    source = tmp_path / "e.txt"
    source.write_bytes(b"e")
    assert run_updl(server, token, "put", "--expires", "1h", str(source)).returncode == 0
    expire(server, "e.txt")
    assert run_updl(server, token, "info", "e.txt").returncode == 4
    assert records(run_updl(server, token, "--json", "ls")) == []
