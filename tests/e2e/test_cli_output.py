"""What the installed ``updl`` prints where: results on stdout, everything else on stderr."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from pathlib import Path
from typing import Any

from tests.support.files import md5_hex
from tests.support.live_server import LiveServer, clean_env, console_script


def test_closed_stdout_ends_quietly_like_coreutils(live_server: LiveServer, token: str, make_file, run_updl) -> None:
    for index in range(3):
        assert run_updl(live_server, token, "put", str(make_file(f"f{index}.bin", 10))).returncode == 0
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before updl writes a byte: `updl --json ls | head -0`
    try:
        done = subprocess.run(
            [console_script("updl"), "--json", "ls"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
            env=clean_env(UPDL_URL=live_server.url, UPDL_TOKEN=token),
        )
    finally:
        os.close(write_end)
    assert done.stderr == ""
    assert done.returncode == 141


RECORD_KEYS = {"name", "path", "status", "size", "md5", "attempts", "seconds"}


def records(stdout: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    *rows, last = [json.loads(line) for line in stdout.splitlines()]
    return rows, last["summary"]


def test_json_get_has_the_record_and_summary_put_has(
    live_server: LiveServer, token: str, make_file, run_updl, tmp_path: Path
) -> None:
    source = make_file("one.bin", 1000)
    put = run_updl(live_server, token, "--json", "put", str(source))
    get = run_updl(live_server, token, "--json", "get", "one.bin", "-o", str(tmp_path / "copy.bin"))
    assert put.returncode == 0 and get.returncode == 0, put.stderr + get.stderr
    (put_row,), put_summary = records(put.stdout)
    (get_row,), get_summary = records(get.stdout)
    assert put_row.keys() >= RECORD_KEYS and get_row.keys() >= RECORD_KEYS
    assert (get_row["status"], get_row["path"], get_row["md5"]) == (
        "downloaded",
        str(tmp_path / "copy.bin"),
        md5_hex(source),
    )
    assert get_row["attempts"] == 1 and put_summary["uploaded"] == 1 and get_summary["downloaded"] == 1


def test_json_failure_is_a_record_too(live_server: LiveServer, token: str, run_updl, tmp_path: Path) -> None:
    get = run_updl(live_server, token, "--json", "get", "missing.bin", "-o", str(tmp_path / "x"))
    assert get.returncode == 4
    (row,), summary = records(get.stdout)
    assert row["status"] == "failed" and row["name"] == "missing.bin" and "no such file" in row["error"]
    assert row.keys() >= RECORD_KEYS and summary["failed"] == 1
    assert get.stderr.splitlines()[-1].startswith("updl: error: ")
    assert not (tmp_path / "x").exists()


def test_results_on_stdout_progress_on_stderr(
    live_server: LiveServer, token: str, make_file, run_updl, tmp_path: Path
) -> None:
    source = make_file("two.bin", 1000)
    put = run_updl(live_server, token, "put", str(source))
    get = run_updl(live_server, token, "get", "two.bin", "-o", str(tmp_path / "two.bin"))
    rm = run_updl(live_server, token, "rm", "two.bin")
    assert put.stdout.startswith("uploaded two.bin ") and put.stdout.count("\n") == 1
    assert put.stderr.startswith("updl: uploading two.bin")
    assert get.stdout.startswith(f"downloaded two.bin to {tmp_path / 'two.bin'} ")
    assert "uploaded" not in put.stderr and "downloaded" not in get.stderr
    assert rm.stdout == "deleted two.bin\n" and rm.stderr == ""
    quiet = run_updl(live_server, token, "put", str(source), "-q")
    assert quiet.returncode == 0 and quiet.stdout == quiet.stderr == ""


def test_results_reach_a_redirected_stdout_while_bars_draw_on_a_terminal(
    live_server: LiveServer, token: str, make_file, tmp_path: Path
) -> None:
    """`updl put f > results.txt` on a terminal: the bar on the terminal, the result line in the file."""
    source = make_file("bar.bin", 300_000)
    controller, terminal = pty.openpty()
    results = tmp_path / "results.txt"
    try:
        with results.open("w") as out:
            done = subprocess.run(
                [console_script("updl"), "put", str(source)],
                stdout=out,
                stderr=terminal,
                stdin=subprocess.DEVNULL,
                timeout=120,
                env=clean_env(UPDL_URL=live_server.url, UPDL_TOKEN=token),
            )
    finally:
        os.close(terminal)
        os.close(controller)
    assert done.returncode == 0
    assert results.read_text().startswith("uploaded bar.bin ")


def test_json_failure_record_for_standard_input_too(server_factory, make_file) -> None:
    server = server_factory("--max-size", "1000")
    done = subprocess.run(
        [console_script("updl"), "--json", "put", "-", "--name", "big.bin"],
        input=make_file("big.bin", 5000).read_bytes(),
        capture_output=True,
        timeout=120,
        env=clean_env(UPDL_URL=server.url, UPDL_TOKEN=server.add_user("s")),
    )
    assert done.returncode == 1
    (row,), summary = records(done.stdout.decode())
    assert row.keys() >= RECORD_KEYS and row["status"] == "failed" and row["path"] == "-"
    assert row["error"] == "file exceeds the server's size limit (limit 1000 B)"
    assert summary["failed"] == 1
