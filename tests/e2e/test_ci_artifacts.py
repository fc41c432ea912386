"""CI artifacts end to end: batches, globs, prefixes, manifests and exit codes through the installed ``updl``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.files import md5_hex
from tests.support.live_server import LiveServer

UNICODE = "résumé ü 漢字.txt"


def make_tree(root: Path) -> dict[str, bytes]:
    """``dist/`` with nested directories, a unicode name and an empty file; returns relative path -> bytes."""
    files = {
        "dist/app-1.0.whl": os.urandom(70_000),
        "dist/app-1.0.tar.gz": os.urandom(5_000),
        "dist/empty.txt": b"",
        f"dist/docs/{UNICODE}": "ünïcödé\n".encode(),
        "dist/docs/deep/er/notes.log": b"log line\n",
    }
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def json_lines(stdout: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    *rows, last = [json.loads(line) for line in stdout.splitlines()]
    return rows, last["summary"]


def test_tree_with_manifest_round_trip_checked_by_coreutils(
    live_server: LiveServer, token: str, run_updl, tmp_path: Path
) -> None:
    work = tmp_path / "job1"
    files = make_tree(work)
    put = run_updl(
        live_server, token, "--json", "put", "dist", "-r", "--prefix", "build/7", "--manifest", "MD5SUMS", cwd=work
    )
    assert put.returncode == 0, put.stderr
    rows, summary = json_lines(put.stdout)
    assert sorted(r["name"] for r in rows) == sorted(f"build/7/{p}" for p in files)
    assert {r["status"] for r in rows} == {"uploaded"}
    assert summary["uploaded"] == 5 and summary["failed"] == 0 and summary["bytes"] == sum(map(len, files.values()))
    # The manifest is what md5sum -c accepts, run where put ran.
    check = subprocess.run(["md5sum", "-c", "MD5SUMS"], cwd=work, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count(": OK") == 5

    # A later job: fetch the manifest, then everything below the prefix, verified against it.
    job2 = tmp_path / "job2"
    job2.mkdir()
    assert run_updl(live_server, token, "put", str(work / "MD5SUMS"), "--prefix", "build/7").returncode == 0
    assert run_updl(live_server, token, "get", "build/7/MD5SUMS", cwd=job2).returncode == 0
    get = run_updl(
        live_server, token, "--json", "get", "--prefix", "build/7/", "-o", ".", "--manifest", "MD5SUMS", cwd=job2
    )
    assert get.returncode == 0, get.stderr
    rows, summary = json_lines(get.stdout)
    assert summary["downloaded"] == 5 and summary["failed"] == 0
    assert [r["reason"] for r in rows if r["status"] == "skipped"] == ["not in the manifest"]  # MD5SUMS itself
    for relative, data in files.items():
        assert (job2 / relative).read_bytes() == data
    assert subprocess.run(["md5sum", "-c", "--quiet", "MD5SUMS"], cwd=job2).returncode == 0
    assert run_updl(live_server, token, "verify", "MD5SUMS", cwd=job2).returncode == 0


def test_sha256_manifest_with_globs_accepted_by_sha256sum(
    live_server: LiveServer, token: str, run_updl, tmp_path: Path
) -> None:
    files = make_tree(tmp_path)
    put = run_updl(
        live_server,
        token,
        "-q",
        "put",
        "dist/*.whl",
        "dist/**/*.log",
        "dist/*.txt",
        "--manifest",
        "SHA256SUMS",
        "--manifest-format",
        "sha256",
        cwd=tmp_path,
    )
    assert put.returncode == 0, put.stderr
    listed = (tmp_path / "SHA256SUMS").read_text().splitlines()
    assert sorted(line.split("  ", 1)[1] for line in listed) == [
        "dist/app-1.0.whl",
        "dist/docs/deep/er/notes.log",
        "dist/empty.txt",
    ]
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=tmp_path, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    ls = run_updl(live_server, token, "--json", "ls")
    assert sorted(json.loads(line)["name"] for line in ls.stdout.splitlines()) == [
        "dist/app-1.0.whl",
        "dist/docs/deep/er/notes.log",
        "dist/empty.txt",
    ]
    assert files  # the tree was there


def test_exclude_and_include_patterns(live_server: LiveServer, token: str, run_updl, tmp_path: Path) -> None:
    make_tree(tmp_path)
    put = run_updl(
        live_server,
        token,
        "--json",
        "put",
        "-r",
        "dist",
        "--exclude",
        "*.log",
        "--exclude",
        "dist/docs/*",
        "--include",
        "dist/*",
        cwd=tmp_path,
    )
    assert put.returncode == 0, put.stderr
    rows, _ = json_lines(put.stdout)
    assert sorted(r["name"] for r in rows) == ["dist/app-1.0.tar.gz", "dist/app-1.0.whl", "dist/empty.txt"]


def test_dry_run_sends_nothing(token: str, run_updl, tmp_path: Path) -> None:
    make_tree(tmp_path)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        dry = run_updl(
            url, token, "--json", "put", "-r", "dist", "--prefix", "p", "--skip-existing", "--dry-run", cwd=tmp_path
        )
        assert dry.returncode == 0, dry.stderr
        # The kernel completes a TCP handshake into the backlog without accept(): an empty backlog proves
        # that updl never connected.
        with pytest.raises(BlockingIOError):
            listener.accept()
    rows, summary = json_lines(dry.stdout)
    assert summary == {"planned": 5, "bytes": 75_000 + len("ünïcödé\n".encode()) + 9, "dry_run": True}
    assert {"name": "p/dist/empty.txt", "path": "dist/empty.txt", "size": 0, "status": "planned"} in rows


def test_skip_existing_skips_exactly_the_unchanged_files(
    live_server: LiveServer, token: str, run_updl, tmp_path: Path
) -> None:
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.bin").write_bytes(os.urandom(3000))
    first = run_updl(live_server, token, "-q", "put", "*.bin", "--prefix", "s", "--skip-existing", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    (tmp_path / "b.bin").write_bytes(os.urandom(3000))
    again = run_updl(live_server, token, "--json", "put", "*.bin", "--prefix", "s", "--skip-existing", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    rows, summary = json_lines(again.stdout)
    assert sorted((r["name"], r["status"]) for r in rows) == [
        ("s/a.bin", "skipped"),
        ("s/b.bin", "uploaded"),
        ("s/c.bin", "skipped"),
    ]
    assert (summary["uploaded"], summary["skipped"], summary["bytes"]) == (1, 2, 3000)
    info = json.loads(run_updl(live_server, token, "--json", "info", "s/b.bin").stdout)
    assert info["md5"] == md5_hex(tmp_path / "b.bin")


def test_partial_failure_reports_every_file(live_server: LiveServer, token: str, run_updl, tmp_path: Path) -> None:
    for name in ("ok1.bin", "bad\\name.bin", "ok2.bin"):  # the server refuses a backslash (400)
        (tmp_path / name).write_bytes(b"x" * 100)
    put = run_updl(live_server, token, "--json", "put", "*.bin", cwd=tmp_path)
    assert put.returncode == 8, put.stderr
    rows, summary = json_lines(put.stdout)
    by_name = {r["name"]: r for r in rows}
    assert by_name["bad\\name.bin"]["status"] == "failed" and "backslash" in by_name["bad\\name.bin"]["error"]
    assert by_name["ok1.bin"]["status"] == by_name["ok2.bin"]["status"] == "uploaded"
    assert (summary["uploaded"], summary["failed"]) == (2, 1)
    assert put.stderr.splitlines()[-1] == "updl: error: 1 of 3 files failed"
    # Human mode says the same: a result line per file and the summary on stdout, the failure on stderr.
    human = run_updl(live_server, token, "put", "*.bin", cwd=tmp_path)
    assert human.returncode == 8
    assert any(line.startswith("updl: failed bad\\name.bin: ") for line in human.stderr.splitlines())
    assert human.stdout.splitlines()[-1].startswith("2 uploaded, 1 failed; ")


def test_if_no_files_exit_codes(live_server: LiveServer, token: str, run_updl, tmp_path: Path) -> None:
    fail = run_updl(live_server, token, "put", "dist/*.whl", cwd=tmp_path)
    assert fail.returncode == 7 and fail.stderr.startswith("updl: error: no files to upload: dist/*.whl")
    warn = run_updl(live_server, token, "--json", "put", "dist/*.whl", "--if-no-files", "warn", cwd=tmp_path)
    assert warn.returncode == 0 and "warning: no files" in warn.stderr
    assert json_lines(warn.stdout)[1]["uploaded"] == 0
    ignore = run_updl(live_server, token, "put", "dist/*.whl", "--if-no-files", "ignore", cwd=tmp_path)
    assert (ignore.returncode, ignore.stderr) == (0, "")
    assert run_updl(live_server, token, "get", "--prefix", "none/", cwd=tmp_path).returncode == 7
    (tmp_path / "emptydir").mkdir()
    assert run_updl(live_server, token, "put", "-r", "emptydir", cwd=tmp_path).returncode == 7
    assert run_updl(live_server, token, "put", "emptydir", cwd=tmp_path).returncode == 2  # a dir needs -r
    assert run_updl(live_server, token, "put", "missing.whl", cwd=tmp_path).returncode == 4  # a literal typo


def test_jobs_4_of_20_files_all_verify(live_server: LiveServer, token: str, run_updl, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(20):
        (src / f"f{i:02}.bin").write_bytes(os.urandom(20_000 + i * 1000))
    put = run_updl(
        live_server,
        token,
        "--json",
        "put",
        "-r",
        "src",
        "--jobs",
        "4",
        "--prefix",
        "j",
        "--manifest",
        "MD5SUMS",
        cwd=tmp_path,
    )
    assert put.returncode == 0, put.stderr
    rows, summary = json_lines(put.stdout)
    assert summary["uploaded"] == 20 and len(rows) == 20
    assert all(r["md5"] == md5_hex(tmp_path / r["path"]) for r in rows)
    out = tmp_path / "out"
    get = run_updl(
        live_server,
        token,
        "--json",
        "get",
        "--prefix",
        "j",
        "-o",
        str(out),
        "--jobs",
        "4",
        "--manifest",
        "MD5SUMS",
        cwd=tmp_path,
    )
    assert get.returncode == 0, get.stderr
    assert json_lines(get.stdout)[1]["downloaded"] == 20
    for i in range(20):
        assert md5_hex(out / "src" / f"f{i:02}.bin") == md5_hex(src / f"f{i:02}.bin")


def test_get_manifest_detects_a_tampered_entry(live_server: LiveServer, token: str, run_updl, tmp_path: Path) -> None:
    make_tree(tmp_path)
    assert (
        run_updl(
            live_server, token, "-q", "put", "-r", "dist", "--prefix", "t", "--manifest", "MD5SUMS", cwd=tmp_path
        ).returncode
        == 0
    )
    lines = (tmp_path / "MD5SUMS").read_text().splitlines()
    _digest, path = lines[0].split("  ", 1)
    lines[0] = f"{'0' * 32}  {path}"
    (tmp_path / "MD5SUMS").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    get = run_updl(
        live_server, token, "--json", "get", "--prefix", "t", "-o", str(out), "--manifest", "MD5SUMS", cwd=tmp_path
    )
    assert get.returncode == 5, get.stderr
    rows, summary = json_lines(get.stdout)
    failed = [r for r in rows if r["status"] == "failed"]
    assert [r["name"] for r in failed] == [f"t/{path}"] and "differs from the manifest" in failed[0]["error"]
    assert summary["downloaded"] == 4
    assert not (out / path).exists()
    # verify reports the same kinds of trouble on local files: FAILED -> 5, MISSING -> 4.
    verify = run_updl(live_server, token, "verify", "MD5SUMS", "-C", str(out), cwd=tmp_path)
    assert verify.returncode == 4 and f"{path}: MISSING" in verify.stdout
    (out / path).write_bytes(b"tampered")
    verify = run_updl(live_server, token, "verify", "MD5SUMS", "-C", str(out), cwd=tmp_path)
    assert verify.returncode == 5 and f"{path}: FAILED" in verify.stdout
    assert verify.stdout.count(": OK") == 4
