"""``updl put`` and its sources against a live server: files changing under it, symlinks, missing files
(and ``get``, which follows the same rule for a NAME that cannot be fetched)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from tests.support.files import md5_hex
from tests.support.live_server import LiveServer
from updl.cli import Environment, cli

FLIP = bytes(b ^ 0xFF for b in range(256))


def updl(server: LiveServer, token: str, *args: str, env: Environment | None = None) -> Result:
    """The CLI in-process (CliRunner), as the given user."""
    return CliRunner().invoke(
        cli, ["--url", server.url, "--token", token, *args], obj=env or Environment(sleep=lambda _s: None)
    )


class RewritingClock:
    """The CLI's clock, which the progress view reads on every event: each call rewrites ``path``.

    Every byte flipped and a new mtime each time (so the change shows whatever
    the file system's timestamp granularity): the file never holds still.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        data = self.path.read_bytes()
        with self.path.open("r+b") as f:
            f.write(data.translate(FLIP))
        os.utime(self.path, ns=(self.calls * 10**9, self.calls * 10**9))
        return 100.0


def test_put_of_a_file_that_keeps_changing_fails_after_the_retries_and_stores_nothing(
    live_server: LiveServer, token: str, tmp_path: Path
) -> None:
    source = tmp_path / "busy.log"
    source.write_bytes(bytes(range(256)) * 1200)
    env = Environment(sleep=lambda _s: None, clock=RewritingClock(source))
    result = updl(live_server, token, "put", "--retries", "1", str(source), env=env)
    assert result.exit_code == 1, result.stderr
    lines = result.stderr.splitlines()
    assert sum("retrying (attempt 2 of 2)" in line for line in lines) == 1
    assert lines[-1] == (
        f"updl: error: {source} changed while it was being uploaded (modified); nothing "
        "was stored: upload it again once it is complete (after 2 attempts)"
    )
    assert updl(live_server, token, "info", "busy.log").exit_code == 4


def symlinked_tree(root: Path) -> None:
    """``dist/`` holding a file, a symlink to a file outside the tree and one to a directory outside it."""
    (root / "secret").mkdir()
    (root / "secret" / "id_rsa").write_bytes(b"PRIVATE KEY\n")
    (root / "dist").mkdir()
    (root / "dist" / "a.whl").write_bytes(b"wheel\n")
    (root / "dist" / "key_link").symlink_to("../secret/id_rsa")
    (root / "dist" / "linked").symlink_to("../secret")


def json_rows(stdout: str) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    *rows, last = [json.loads(line) for line in stdout.splitlines()]
    return {row["name"]: row for row in rows}, last["summary"]


def test_put_r_does_not_follow_symlinks_out_of_the_tree_and_says_so(
    live_server: LiveServer, token: str, tmp_path: Path, monkeypatch
) -> None:
    symlinked_tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    put = updl(live_server, token, "--json", "put", "-r", "dist", "--prefix", "b")
    assert put.exit_code == 0, put.stderr
    rows, summary = json_rows(put.stdout)
    assert {name: row["status"] for name, row in rows.items()} == {
        "b/dist/a.whl": "uploaded",
        "b/dist/key_link": "skipped",
        "b/dist/linked": "skipped",
    }
    assert rows["b/dist/key_link"]["reason"] == (
        "symlink to ../secret/id_rsa: not followed without -L/--follow-symlinks"
    )
    assert (summary["uploaded"], summary["skipped"], summary["failed"]) == (1, 2, 0)
    listed = updl(live_server, token, "--json", "ls", "b/")
    assert [json.loads(line)["name"] for line in listed.stdout.splitlines()] == ["b/dist/a.whl"]
    human = updl(live_server, token, "put", "-r", "dist", "--prefix", "h")
    assert human.exit_code == 0, human.stderr
    assert (
        "skipped h/dist/key_link (symlink to ../secret/id_rsa: not followed without -L/--follow-symlinks)"
    ) in human.output  # stdout or stderr: the CLI's choice


def test_put_r_follow_symlinks_uploads_their_targets(
    live_server: LiveServer, token: str, tmp_path: Path, monkeypatch
) -> None:
    symlinked_tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    put = updl(live_server, token, "--json", "put", "-r", "-L", "dist")
    assert put.exit_code == 0, put.stderr
    rows, _ = json_rows(put.stdout)
    assert {name: row["status"] for name, row in rows.items()} == {
        "dist/a.whl": "uploaded",
        "dist/key_link": "uploaded",
        "dist/linked/id_rsa": "uploaded",
    }
    assert rows["dist/key_link"]["md5"] == rows["dist/linked/id_rsa"]["md5"] == md5_hex(tmp_path / "secret/id_rsa")


def test_a_missing_file_fails_alone_in_put_and_in_get(
    live_server: LiveServer, token: str, run_updl, tmp_path: Path
) -> None:
    """Same rule both ways: the missing one is reported failed, the others are transferred, exit 8."""
    (tmp_path / "fresh.bin").write_bytes(b"fresh\n")
    (tmp_path / "out").mkdir()
    put = run_updl(live_server, token, "--json", "put", "nosuch.bin", "fresh.bin", "--prefix", "m", cwd=tmp_path)
    get = run_updl(live_server, token, "--json", "get", "m/nosuch.bin", "m/fresh.bin", "-o", "out", cwd=tmp_path)
    for result, done in ((put, "uploaded"), (get, "downloaded")):
        assert result.returncode == 8, result.stderr
        rows, summary = json_rows(result.stdout)
        assert rows["m/fresh.bin"]["status"] == done
        assert rows["m/nosuch.bin"]["status"] == "failed"
        assert (summary[done], summary["failed"]) == (1, 1)
        assert result.stderr.splitlines()[-1] == "updl: error: 1 of 2 files failed"
    assert rows_error(put, "m/nosuch.bin") == "no such local file or directory: nosuch.bin"
    assert rows_error(get, "m/nosuch.bin") == "no such file on the server: m/nosuch.bin"
    assert (tmp_path / "out" / "fresh.bin").read_bytes() == b"fresh\n"
    human = run_updl(live_server, token, "put", "nosuch.bin", "fresh.bin", cwd=tmp_path)
    assert human.returncode == 8
    dry = run_updl(live_server, token, "put", "nosuch.bin", "fresh.bin", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 4  # the preview lists the rest, and fails on what the real run would
    assert "would upload fresh.bin -> fresh.bin" in dry.stdout
    assert "failed nosuch.bin: no such local file or directory: nosuch.bin" in human.stdout + human.stderr


def rows_error(result, name: str) -> str:
    return json_rows(result.stdout)[0][name]["error"]


def test_when_only_symlinks_were_found_they_are_reported_then_no_files(
    live_server: LiveServer, token: str, tmp_path: Path, monkeypatch
) -> None:
    symlinked_tree(tmp_path)
    (tmp_path / "dist" / "a.whl").unlink()
    monkeypatch.chdir(tmp_path)
    fail = updl(live_server, token, "put", "-r", "dist")
    assert fail.exit_code == 7
    said = fail.output  # the skipped lines (wherever the CLI puts them), then the error
    assert (
        0
        <= said.find("skipped dist/key_link (")
        < said.find("skipped dist/linked (")
        < said.find("updl: error: no files to upload: dist")
    )
    warn = updl(live_server, token, "--json", "put", "-r", "dist", "--if-no-files", "warn")
    assert warn.exit_code == 0
    rows, summary = json_rows(warn.stdout)
    assert {row["status"] for row in rows.values()} == {"skipped"}
    assert (summary["uploaded"], summary["skipped"]) == (0, 2)


def test_get_goes_on_past_a_name_the_server_refuses(
    live_server: LiveServer, token: str, run_updl, tmp_path: Path
) -> None:
    """Planning asks the server about each NAME; a refusal (400) is that name's failure, not the batch's."""
    (tmp_path / "fresh.bin").write_bytes(b"fresh\n")
    assert run_updl(live_server, token, "-q", "put", "fresh.bin", cwd=tmp_path).returncode == 0
    (tmp_path / "out").mkdir()
    get = run_updl(live_server, token, "--json", "get", "fresh.bin", "a//b", "-o", "out", cwd=tmp_path)
    assert get.returncode == 8, get.stderr
    rows, _summary = json_rows(get.stdout)
    assert (rows["fresh.bin"]["status"], rows["a//b"]["status"]) == ("downloaded", "failed")
    assert (tmp_path / "out" / "fresh.bin").read_bytes() == b"fresh\n"
    wrong = run_updl(live_server, "updl_0000000000000000_wrong", "get", "fresh.bin", "a//b", "-o", "out", cwd=tmp_path)
    assert wrong.returncode == 3  # but a refused token would fail every name: it still stops at once
