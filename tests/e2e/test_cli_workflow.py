"""The whole workflow through the installed ``updl`` command, as a terminal or CI user runs it."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from tests.support.files import md5_hex
from tests.support.live_server import LiveServer
from updl.cli import cli


def test_put_ls_get_rm_through_console_script(
    live_server: LiveServer, token: str, make_file, run_updl, tmp_path: Path
) -> None:
    source = make_file("app.tar.gz", 2 * 1024 * 1024)

    put = run_updl(live_server, token, "--json", "put", str(source), "--name", "build/42/app.tar.gz")
    assert put.returncode == 0, put.stderr
    line, summary = (json.loads(text) for text in put.stdout.splitlines())
    uploaded = line
    assert uploaded["status"] == "uploaded" and summary["summary"]["uploaded"] == 1
    assert uploaded["name"] == "build/42/app.tar.gz"
    assert uploaded["md5"] == md5_hex(source)
    # Not a terminal: progress goes to stderr as plain lines, never carriage-return redraws.
    assert "\r" not in put.stderr
    assert "app.tar.gz" in put.stderr

    ls = run_updl(live_server, token, "--json", "ls", "build/")
    assert ls.returncode == 0, ls.stderr
    rows = [json.loads(line) for line in ls.stdout.splitlines()]
    assert [(r["name"], r["size"], r["md5"]) for r in rows] == [
        ("build/42/app.tar.gz", source.stat().st_size, md5_hex(source))
    ]

    get = run_updl(live_server, token, "get", "build/42/app.tar.gz", cwd=tmp_path)
    assert get.returncode == 0, get.stderr
    assert md5_hex(tmp_path / "app.tar.gz") == md5_hex(source)

    rm = run_updl(live_server, token, "rm", "build/42/app.tar.gz")
    assert rm.returncode == 0, rm.stderr
    gone = run_updl(live_server, token, "info", "build/42/app.tar.gz")
    assert gone.returncode == 4
    assert gone.stderr.count("\n") == 1 and gone.stderr.startswith("updl: error:")


def test_put_several_files_and_get_into_directory(
    live_server: LiveServer, token: str, make_file, run_updl, tmp_path: Path
) -> None:
    files = [make_file(f"part{i}.bin", 10_000 + i) for i in range(3)]
    put = run_updl(live_server, token, "--quiet", "put", *map(str, files))
    assert put.returncode == 0, put.stderr
    assert put.stderr == ""
    out = tmp_path / "out"
    out.mkdir()
    for source in files:
        assert run_updl(live_server, token, "-q", "get", source.name, "-o", str(out)).returncode == 0
        assert (out / source.name).read_bytes() == source.read_bytes()


def test_exit_codes_for_auth_missing_and_unreachable(
    live_server: LiveServer, token: str, make_file, run_updl, tmp_path: Path
) -> None:
    assert run_updl(live_server, "updl_0000000000000000_wrong", "ls").returncode == 3
    assert run_updl(live_server, token, "get", "no/such/file", cwd=tmp_path).returncode == 4
    assert list(tmp_path.iterdir()) == []
    assert run_updl(live_server, token, "put", str(tmp_path / "missing.bin")).returncode == 4
    unreachable = run_updl("http://127.0.0.1:9", token, "--json", "put", str(make_file()), "--retries", "1")
    assert unreachable.returncode == 6
    failed, summary = (json.loads(text) for text in unreachable.stdout.splitlines())
    assert failed["status"] == "failed" and failed["attempts"] == 2
    assert summary["summary"]["failed"] == 1


def test_cli_in_process_with_settings_from_flags(
    live_server: LiveServer, token: str, make_file, tmp_path: Path
) -> None:
    source = make_file("flags.bin", 4096)
    runner = CliRunner()
    put = runner.invoke(cli, ["--url", live_server.url, "--token", token, "put", str(source)])
    assert put.exit_code == 0, put.output
    info = runner.invoke(cli, ["--url", live_server.url, "--token", token, "--json", "info", "flags.bin"])
    assert info.exit_code == 0
    assert json.loads(info.stdout)["md5"] == md5_hex(source)


def test_get_several_names_at_once(live_server: LiveServer, token: str, make_file, run_updl, tmp_path: Path) -> None:
    files = [make_file(f"many{i}.bin", 300_000 + i) for i in range(4)]
    assert run_updl(live_server, token, "-q", "put", "--prefix", "many/", *map(str, files)).returncode == 0
    out = tmp_path / "fetched"
    out.mkdir()

    got = run_updl(
        live_server, token, "--json", "get", "--jobs", "3", "-o", str(out), *(f"many/{f.name}" for f in files)
    )
    assert got.returncode == 0, got.stderr
    lines = [json.loads(line) for line in got.stdout.splitlines()]
    assert lines[-1]["summary"]["downloaded"] == 4
    assert sorted(p.name for p in out.iterdir()) == sorted(f.name for f in files)
    for source in files:
        assert md5_hex(out / source.name) == md5_hex(source)

    # One missing name: the others still arrive, every file is reported, exit 8 (partial).
    again = tmp_path / "again"
    again.mkdir()
    partial = run_updl(
        live_server, token, "--json", "get", "-o", str(again), f"many/{files[0].name}", "many/not-there.bin"
    )
    assert partial.returncode == 8, partial.stderr
    statuses = {line["name"]: line["status"] for line in map(json.loads, partial.stdout.splitlines()) if "name" in line}
    assert statuses == {f"many/{files[0].name}": "downloaded", "many/not-there.bin": "failed"}
    assert [p.name for p in again.iterdir()] == [files[0].name]
