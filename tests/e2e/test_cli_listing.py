"""``updl ls`` (folder-style, long, sorted, totals) and ``updl du`` through the installed script."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import updl
from tests.support.live_server import LiveServer

Run = Callable[..., subprocess.CompletedProcess[str]]
SIZES = {"rel/a.txt": 100, "rel/b.bin": 3000, "rel/docs/x.md": 20, "rel/docs/deep/y.md": 5, "rel/img/p.png": 700}


@pytest.fixture
def tree(live_server: LiveServer, token: str, tmp_path: Path) -> str:
    """The files of ``SIZES`` stored for ``token``'s user."""
    with updl.Client(live_server.url, token) as client:
        for name, size in SIZES.items():
            path = tmp_path / "f"
            path.write_bytes(b"z" * size)
            client.upload(path, name)
    return token


def records(result: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_ls_default_is_every_file_with_totals(live_server: LiveServer, tree: str, run_updl: Run) -> None:
    """Unchanged for scripts: every file below PREFIX at any depth; then a totals line."""
    result = run_updl(live_server, tree, "ls", "rel/")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines[1:-1]] == sorted(SIZES)
    assert lines[-1] == "5 files, 3.7 KiB (3825 bytes)"
    assert [r["name"] for r in records(run_updl(live_server, tree, "--json", "ls", "rel/"))] == sorted(SIZES)


def test_ls_folders(live_server: LiveServer, tree: str, run_updl: Run) -> None:
    folders = run_updl(live_server, tree, "ls", "--folders", "rel/")
    assert folders.returncode == 0, folders.stderr
    lines = folders.stdout.splitlines()
    assert [line.split()[0] for line in lines[1:-1]] == ["rel/a.txt", "rel/b.bin", "rel/docs/", "rel/img/"]
    assert lines[-1] == "2 files, 3.0 KiB (3100 bytes), 2 folders"
    assert records(run_updl(live_server, tree, "--json", "ls", "-F", "rel/docs/")) == [
        {"prefix": "rel/docs/deep/"},
        {**records(run_updl(live_server, tree, "--json", "info", "rel/docs/x.md"))[0]},
    ]
    recursive = records(run_updl(live_server, tree, "--json", "ls", "-F", "-r", "rel/"))
    assert [r["name"] for r in recursive] == sorted(SIZES)


def test_ls_sort_and_long(live_server: LiveServer, tree: str, run_updl: Run) -> None:
    by_size = records(run_updl(live_server, tree, "--json", "ls", "--sort", "size", "--reverse", "rel/"))
    assert [r["name"] for r in by_size] == sorted(SIZES, key=lambda n: -SIZES[n])
    long = run_updl(live_server, tree, "ls", "-l", "--sort", "size", "rel/img/")
    assert long.returncode == 0, long.stderr
    header, row, totals = long.stdout.splitlines()
    assert header.split() == ["NAME", "SIZE", "MD5", "CREATED"]
    assert row.split()[:3] == ["rel/img/p.png", "700", "B"]
    assert totals == "1 file, 700 B (700 bytes)"


def test_du(live_server: LiveServer, tree: str, run_updl: Run) -> None:
    text = run_updl(live_server, tree, "du", "rel/docs/")
    assert (text.returncode, text.stdout) == (0, "2 files, 25 B (25 bytes) under rel/docs/\n")
    assert records(run_updl(live_server, tree, "--json", "du")) == [{"prefix": "", "files": 5, "bytes": 3825}]
    empty = run_updl(live_server, tree, "du", "nothing/")
    assert (empty.returncode, empty.stdout) == (0, "0 files, 0 B (0 bytes) under nothing/\n")
