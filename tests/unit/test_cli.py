"""The ``updl`` command through click's CliRunner against a scripted server."""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import responses
from click.testing import CliRunner

from tests.support.cli import FakeClock, error_line, run
from tests.support.scripted import URL, download_headers, file_info
from updl.cli import cli
from updl.console import PlainView, human_size
from updl.sdk.models import FileInfo
from updl.sdk.progress import ProgressEvent

DATA = b"x" * 250_000
UPLOAD = URL + "/upload"


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "app.tar.gz"
    path.write_bytes(DATA)
    return path


def test_put_ok_plain_progress(server: responses.RequestsMock, source: Path) -> None:
    server.post(UPLOAD, json=file_info("app.tar.gz", DATA))
    result = run("put", str(source))
    assert result.exit_code == 0, result.stderr
    assert "\r" not in result.stderr
    assert result.stderr.splitlines() == ["updl: uploading app.tar.gz (244.1 KiB)"]  # progress: stderr
    # The result: stdout.
    assert re.fullmatch(
        rf"uploaded app.tar.gz 244.1 KiB in \d+\.\ds, md5 {hashlib.md5(DATA).hexdigest()}\n", result.stdout
    )


def test_put_json_and_quiet(server: responses.RequestsMock, source: Path, tmp_path: Path) -> None:
    other = tmp_path / "b.bin"
    other.write_bytes(b"bb")
    server.post(UPLOAD, json=file_info("app.tar.gz", DATA))
    server.post(UPLOAD, json=file_info("b.bin", b"bb"))
    result = run("--json", "-q", "put", str(source), str(other))
    assert result.exit_code == 0 and result.stderr == ""
    *rows, summary = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["name"], r["status"]) for r in rows] == [("app.tar.gz", "uploaded"), ("b.bin", "uploaded")]
    assert rows[0]["md5"] == hashlib.md5(DATA).hexdigest()
    assert summary["summary"] | {"seconds": 0} == {
        "uploaded": 2,
        "skipped": 0,
        "failed": 0,
        "bytes": len(DATA) + 2,
        "seconds": 0,
    }


def test_put_401_exit_3(server: responses.RequestsMock, source: Path) -> None:
    server.post(UPLOAD, status=401, json={"error": "invalid token"}, headers={"WWW-Authenticate": "Bearer"})
    result = run("put", str(source))
    assert result.exit_code == 3
    assert error_line(result) == (
        "updl: error: the server rejected the token; check that it belongs to this "
        "server: `updl-server add-user NAME` must run with the server's own --data-dir "
        "(or --db-url), and its token be passed with --token or UPDL_TOKEN"
    )


def test_get_404_exit_4(server: responses.RequestsMock, tmp_path: Path) -> None:
    server.get(URL + "/files/nope", status=404, json={"error": "no such file", "name": "nope"})
    result = run("get", "nope", "-o", str(tmp_path))
    assert result.exit_code == 4
    assert error_line(result) == "updl: error: no such file: nope"
    assert list(tmp_path.iterdir()) == []


def test_put_missing_local_file_exit_4(tmp_path: Path) -> None:
    result = run("put", str(tmp_path / "missing"))
    assert result.exit_code == 4
    assert "no such local file" in error_line(result)


def test_put_checksum_mismatch_exit_5_with_retry_lines(server: responses.RequestsMock, source: Path) -> None:
    body = {"error": "checksum failed - please attempt reuploading", "expected": "a" * 32, "actual": "b" * 32}
    for _ in range(4):
        server.post(UPLOAD, status=409, json=body)
    result = run("put", str(source))
    assert result.exit_code == 5
    retries = [line for line in result.stderr.splitlines() if "retrying" in line]
    assert len(retries) == 3
    assert retries[0].startswith(
        "updl: app.tar.gz: checksum mismatch (server: checksum failed - please attempt reuploading), "
        "retrying (attempt 2 of 4) in "
    )
    assert error_line(result).endswith("(after 4 attempts)")


def test_put_unreachable_exit_6(server: responses.RequestsMock, source: Path) -> None:
    for _ in range(2):
        server.post(UPLOAD, body=requests.ConnectionError("[Errno 111] Connection refused"))
    result = run("put", "--retries", "1", str(source))
    assert result.exit_code == 6
    assert error_line(result) == (
        f"updl: error: cannot reach the server at {URL}: connection refused; "
        "check --url / UPDL_URL and that the server is running (after 2 attempts)"
    )


def test_get_ok_default_destination(
    server: responses.RequestsMock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    server.get(URL + "/files/build/app.bin", body=DATA, headers=download_headers(DATA))
    result = run("--json", "get", "build/app.bin")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "app.bin").read_bytes() == DATA
    row, summary = (json.loads(line) for line in result.stdout.splitlines())
    assert row["md5"] == hashlib.md5(DATA).hexdigest() and row["path"] == "app.bin"
    assert summary["summary"]["downloaded"] == 1
    assert "updl: downloading build/app.bin" in result.stderr


def test_ls_table_and_json(server: responses.RequestsMock) -> None:
    page = {"files": [file_info("build/a.bin", DATA), file_info("b", b"")], "next_cursor": None}
    server.get(URL + "/files", json=page)
    server.get(URL + "/files", json=page)
    table = run("ls")
    assert table.exit_code == 0
    assert "build/a.bin" in table.stdout and "244.1 KiB" in table.stdout
    assert hashlib.md5(DATA).hexdigest() in table.stdout and "2026-11-27 21:42:47Z" in table.stdout
    as_json = run("--json", "ls", "build/")
    assert [json.loads(line)["name"] for line in as_json.stdout.splitlines()] == ["build/a.bin", "b"]


def test_info_and_rm(server: responses.RequestsMock) -> None:
    server.get(URL + "/info/a", json=file_info("a", DATA))
    server.delete(URL + "/files/a", status=204)
    server.delete(URL + "/files/b", status=204)
    info = run("info", "a")
    assert "md5:           " + hashlib.md5(DATA).hexdigest() in info.stdout
    removed = run("--json", "rm", "a", "b")
    assert removed.exit_code == 0
    assert [json.loads(line) for line in removed.stdout.splitlines()] == [
        {"name": "a", "deleted": True},
        {"name": "b", "deleted": True},
    ]


def test_interrupt_exit_130(server: responses.RequestsMock, source: Path) -> None:
    def interrupt(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        raise KeyboardInterrupt

    server.add_callback(responses.POST, UPLOAD, callback=interrupt)
    result = run("put", str(source))
    assert result.exit_code == 130
    assert error_line(result) == "updl: error: interrupted; run the same command again to resume"


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run("put", "--name", "x", "a", "b").exit_code == 2
    assert run("frobnicate").exit_code == 2
    result = run("--profile", "missing", "ls")
    assert result.exit_code == 2 and "no profile [missing]" in error_line(result)


def test_debug_shows_traceback(tmp_path: Path) -> None:
    result = run("put", str(tmp_path / "missing"), env={"UPDL_DEBUG": "1"})
    assert result.exit_code == 4 and "Traceback" in result.stderr


def test_help_documents_exit_codes() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    for code in ("0", "1", "2", "3", "4", "5", "6", "130"):
        assert re.search(rf"^ +{code}  \w", result.stdout, re.MULTILINE), code


def test_python_dash_m() -> None:
    done = subprocess.run([sys.executable, "-m", "updl", "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "0.1.0" in done.stdout


def test_plain_view_emits_at_most_one_line_per_interval() -> None:
    stream = io.StringIO()
    clock = FakeClock()
    view = PlainView(stream, clock=clock, interval=5.0)
    view.begin("big", "uploading")
    total = 10_000_000
    for second in range(21):  # 21 s, an event every 0.1 s
        for tenth in range(10):
            clock.now = 100.0 + second + tenth / 10
            view.progress(ProgressEvent("big", min(total, (second * 10 + tenth) * 50_000), total))
    view.done(FileInfo("big", total, "0" * 32, created=__import__("datetime").datetime.now()), "uploaded")
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert lines[0] == "updl: uploading big (9.5 MiB)"
    progress = lines[1:]  # the result line is the report's, on stdout
    assert len(progress) == 4  # at 5, 10, 15, 20 s
    assert progress[0] == "updl: big 25% 2.4/9.5 MiB"


def test_human_size() -> None:
    assert human_size(0) == "0 B" and human_size(999) == "999 B"
    assert human_size(5_242_880) == "5.0 MiB" and human_size(1_500_000_000) == "1.4 GiB"
    assert human_size(1023) == "1023 B" and human_size(1024) == "1.0 KiB"
