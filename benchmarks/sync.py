"""``updl sync`` of a big tree where little changed: run by hand, results go into docs/benchmarks.md.

    .venv/bin/python benchmarks/sync.py [--files 10000] [--size 4096] [--changed 10] [--runs 3] [--jobs 4]

Needs rclone on PATH (Debian: ``apt-get install rclone``). Everything runs on
127.0.0.1 in a temporary directory that is removed at the end.

What it measures (median of ``--runs`` runs; before each run ``--changed``
files get new content of the same size, so only an MD5 can tell):

1. ``updl sync TREE remote:bench/``: asserts from its ``--json`` records that
   exactly the changed files were uploaded and every other one skipped;
2. ``rclone sync --checksum TREE COPY`` to a local directory (rclone hashes
   both sides of every same-size pair, as updl hashes the local side);
3. re-uploading everything: ``updl put -r TREE --prefix full/N/`` (the CI
   habit of a fresh prefix per build), once;
4. ``updl sync remote:bench/ OUT`` with nothing changed (the download side's check).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def content(i: int, generation: int, size: int) -> bytes:
    """Deterministic bytes, different for every file and generation, always ``size`` long."""
    return (f"{i:06d}/{generation:03d} ".encode() * (size // 11 + 1))[:size]


def make_tree(root: Path, files: int, size: int) -> list[Path]:
    paths = []
    for i in range(files):
        path = root / f"d{i // 100:03d}" / f"f{i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content(i, 0, size))
        paths.append(path)
    return paths


class Server:
    """A real updl-server process (``binary``: another build's, for an A/B run) with one user."""

    def __init__(self, root: Path, binary: str | Path = BIN / "updl-server", name: str = "server") -> None:
        self.data = root / f"{name}-data"
        self.log = root / f"{name}.log"
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [
                    str(binary),
                    "run",
                    "--port",
                    "0",
                    "--data-dir",
                    str(self.data),
                    "--log-level",
                    "warning",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            match = re.search(r"listening on (http://\S+)", self.log.read_text())
            if match:
                self.url = match.group(1)
                break
            time.sleep(0.05)
        else:
            raise SystemExit(f"{binary} did not start")
        added = subprocess.run(
            [str(binary), "add-user", "bench", "--data-dir", str(self.data)],
            check=True,
            text=True,
            capture_output=True,
        )
        self.token = added.stdout.strip()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)


def timed(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run(args, env=env, text=True, capture_output=True, timeout=3600)
    seconds = time.monotonic() - started
    if done.returncode:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(args)}\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--changed", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=4)
    opts = parser.parse_args()
    if shutil.which("rclone") is None:
        raise SystemExit("rclone is needed (apt-get install rclone)")
    root = Path(tempfile.mkdtemp(prefix="updl-sync-bench-"))
    server = None
    try:
        tree = root / "tree"
        paths = make_tree(tree, opts.files, opts.size)
        server = Server(root)
        env = {**os.environ, "UPDL_URL": server.url, "UPDL_TOKEN": server.token, "RCLONE_CONFIG": "/dev/null"}
        updl = str(BIN / "updl")
        jobs = ["--jobs", str(opts.jobs)]
        first, _ = timed([updl, "-q", "sync", *jobs, str(tree), "remote:bench/"], env)
        copy = root / "copy"
        rclone_first, _ = timed(["rclone", "sync", "--checksum", str(tree), str(copy)], env)
        results: dict[str, list[float]] = {"updl sync": [], "rclone sync --checksum": []}
        step = max(1, opts.files // opts.changed)
        for run in range(1, opts.runs + 1):
            changed = paths[run % step :: step][: opts.changed]
            for path in changed:
                i = int(path.stem[1:])
                path.write_bytes(content(i, run, opts.size))
            seconds, stdout = timed([updl, "--json", "sync", *jobs, str(tree), "remote:bench/"], env)
            records = [json.loads(line) for line in stdout.splitlines()]
            summary = records.pop()["summary"]
            uploaded = {r["path"] for r in records if r["status"] == "uploaded"}
            assert uploaded == {str(p) for p in changed}, (len(uploaded), summary)
            assert summary["skipped"] == opts.files - opts.changed, summary
            results["updl sync"].append(seconds)
            seconds, _ = timed(["rclone", "sync", "--checksum", str(tree), str(copy)], env)
            results["rclone sync --checksum"].append(seconds)
        full, _ = timed([updl, "-q", "put", "-r", *jobs, str(tree), "--prefix", "full/1/"], env)
        out = root / "out"
        timed([updl, "-q", "sync", *jobs, "remote:bench/", str(out)], env)
        down, stdout = timed([updl, "--json", "sync", *jobs, "remote:bench/", str(out)], env)
        down_summary = json.loads(stdout.splitlines()[-1])["summary"]
        assert down_summary["downloaded"] == 0 and down_summary["skipped"] == opts.files, down_summary

        print(f"tree: {opts.files} files of {opts.size} bytes; {opts.changed} changed per run; jobs {opts.jobs}")
        print(f"first updl sync (everything uploaded): {first:.2f} s; first rclone sync: {rclone_first:.2f} s")
        for name, times in results.items():
            print(f"{name}: median {statistics.median(times):.2f} s of {[round(t, 2) for t in times]}")
        print(f"updl put -r of everything again: {full:.2f} s")
        print(f"updl sync remote:bench/ OUT, nothing changed: {down:.2f} s")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
