"""Load tests for updl-server on loopback: run by hand; the figures go into docs/scaling.md.

    .venv/bin/python benchmarks/load.py original [--target single|workers|cluster] [--workers N]
    .venv/bin/python benchmarks/load.py capacity [--levels 10,25,50,100,200,400] [--target ...]
    .venv/bin/python benchmarks/load.py slow [--clients 1000] [--seconds 25] [--target ...]

Each run starts its own target in a temporary data dir (removed at the end):
``single`` is one ``updl-server run``; ``workers`` is ``updl-server run --workers N``;
``cluster`` is ``deploy/run-cluster.sh -n N`` (N servers behind nginx; needs nginx).
Every transfer is verified: an upload's answer must carry the file's MD5, a
download's bytes must hash to its ETag. Everything is bounded: a fixed number of
transfers, a timeout on every socket, loopback only.

Modes:
- ``original``: 10 clients x 10 uploads of one 5 MB file -> uploads/minute, avg/min/max/p95.
- ``capacity``: simultaneous 5 MB uploads, then downloads, at rising levels until p95 > 4 s
  or an error; the largest level that met p95 <= 4 s with no error.
- ``slow``: ``--clients`` simultaneous slow uploads (``--kib`` each, paced over ``--seconds``),
  zero errors expected; the server processes' RSS is sampled every second.

Many connections need file descriptors: ``ulimit -n 8192`` (client and server) before ``slow``.
The load generator runs on the same 2 cores as the server: the figures are a floor.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / ".venv" / "bin" / "updl-server"
MB = 1_000_000
TIMEOUT = 120.0
P95_TARGET = 4.0


@dataclass
class Target:
    """A running server (or cluster) and a token for a fresh user on it."""

    url: str
    token: str
    process: subprocess.Popen[bytes]
    data_dir: Path

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` to connect to."""
        parts = urlsplit(self.url)
        return parts.hostname or "127.0.0.1", parts.port or 80


@contextmanager
def started(kind: str, workers: int) -> Iterator[Target]:
    """Start the target in a temporary data dir; stop it and remove everything afterwards."""
    work = Path(tempfile.mkdtemp(prefix="updl-load-"))
    data_dir = work / "data"
    if kind == "cluster":
        cmd = [
            str(ROOT / "deploy" / "run-cluster.sh"),
            "-n",
            str(workers),
            "--port",
            "18480",
            "--base-port",
            "18500",
            "--data-dir",
            str(data_dir),
        ]
    else:
        cmd = [
            str(SERVER),
            "run",
            "--port",
            "0",
            "--data-dir",
            str(data_dir),
            "--log-level",
            "warning",
            "--workers",
            str(workers if kind == "workers" else 1),
        ]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        stream = process.stdout if kind == "cluster" else process.stderr
        assert stream is not None
        line = stream.readline().decode()
        match = re.search(r"(http://\S+)", line)
        if match is None:
            raise SystemExit(f"target did not start: {line}{stream.read().decode()}")
        if kind != "cluster":  # keep the pipe drained so server logging never blocks
            threading.Thread(target=stream.read, daemon=True).start()
        token = subprocess.run(
            [str(SERVER), "add-user", f"load{uuid.uuid4().hex[:8]}", "--data-dir", str(data_dir)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        yield Target(match.group(1), token, process, data_dir)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        shutil.rmtree(work, ignore_errors=True)


# transfers


def upload(target: Target, name: str, chunks: Callable[[], Iterator[bytes]], size: int, md5: str) -> float:
    """PUT ``size`` bytes from ``chunks`` with Content-Length; check the answer's MD5; seconds."""
    began = time.monotonic()
    conn = http.client.HTTPConnection(*target.address, timeout=TIMEOUT)
    try:
        conn.putrequest("PUT", f"/files/{name}")
        conn.putheader("Authorization", f"Bearer {target.token}")
        conn.putheader("Content-Length", str(size))
        conn.endheaders()
        for chunk in chunks():
            conn.send(chunk)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200:
        raise RuntimeError(f"upload {name}: HTTP {response.status} {body[:200]!r}")
    got = json.loads(body)["md5"]
    if got != md5:
        raise RuntimeError(f"upload {name}: server md5 {got} != {md5}")
    return time.monotonic() - began


def download(target: Target, name: str, md5: str) -> float:
    """GET ``name``, hashing as it streams; the bytes must match the ETag (and ``md5``); seconds."""
    began = time.monotonic()
    conn = http.client.HTTPConnection(*target.address, timeout=TIMEOUT)
    try:
        conn.request("GET", f"/files/{name}", headers={"Authorization": f"Bearer {target.token}"})
        response = conn.getresponse()
        digest = hashlib.md5(usedforsecurity=False)
        while chunk := response.read(1 << 20):
            digest.update(chunk)
    finally:
        conn.close()
    if response.status != 200:
        raise RuntimeError(f"download {name}: HTTP {response.status}")
    etag = (response.getheader("ETag") or "").strip('"')
    if not (digest.hexdigest() == etag == md5):
        raise RuntimeError(f"download {name}: got {digest.hexdigest()}, ETag {etag}")
    return time.monotonic() - began


def in_memory(data: bytes, chunk: int = 1 << 20) -> Callable[[], Iterator[bytes]]:
    """Chunks of ``data`` (the file is read from memory, so the client stays cheap)."""
    view = memoryview(data)
    return lambda: (bytes(view[i : i + chunk]) for i in range(0, len(data), chunk))


@dataclass
class Outcome:
    """Latencies of successful transfers and messages of failed ones."""

    seconds: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall: float = 0.0

    def summary(self) -> dict[str, float | int]:
        """Count, errors, wall time and latency statistics."""
        s = sorted(self.seconds)
        stats: dict[str, float | int] = {"ok": len(s), "errors": len(self.errors), "wall_s": round(self.wall, 2)}
        if s:
            stats |= {
                "avg_s": round(statistics.fmean(s), 3),
                "min_s": round(s[0], 3),
                "max_s": round(s[-1], 3),
                "p95_s": round(p95(s), 3),
            }
        return stats


def p95(sorted_seconds: list[float]) -> float:
    """The 95th percentile (nearest rank)."""
    return sorted_seconds[max(0, -(-95 * len(sorted_seconds) // 100) - 1)]


def run_together(jobs: list[Callable[[], float]]) -> Outcome:
    """Run every job in its own thread, released at once; collect latencies and errors."""
    outcome = Outcome()
    lock = threading.Lock()
    barrier = threading.Barrier(len(jobs) + 1)

    def run(job: Callable[[], float]) -> None:
        barrier.wait()
        try:
            took = job()
            with lock:
                outcome.seconds.append(took)
        except Exception as exc:  # noqa: BLE001 - a load test counts every failure
            with lock:
                outcome.errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=run, args=(job,), daemon=True) for job in jobs]
    for thread in threads:
        thread.start()
    barrier.wait()
    began = time.monotonic()
    for thread in threads:
        thread.join(TIMEOUT * 2)
    outcome.wall = time.monotonic() - began
    stuck = sum(t.is_alive() for t in threads)
    outcome.errors += [f"still running after {TIMEOUT * 2:.0f} s"] * stuck
    return outcome


# modes


def mode_original(target: Target, args: argparse.Namespace) -> dict[str, object]:
    """10 clients, each uploading a 5 MB file 10 times in a row."""
    data = os.urandom(5 * MB)
    md5 = hashlib.md5(data).hexdigest()

    # One job per client; latencies are recorded per upload.
    per_upload = Outcome()
    lock = threading.Lock()

    def timed_client(c: int) -> Callable[[], float]:
        def run() -> float:
            for i in range(args.uploads):
                took = upload(target, f"orig/c{c}-{i}.bin", in_memory(data), len(data), md5)
                with lock:
                    per_upload.seconds.append(took)
            return 0.0

        return run

    outcome = run_together([timed_client(c) for c in range(args.clients)])
    per_upload.errors, per_upload.wall = outcome.errors, outcome.wall
    result = per_upload.summary()
    result["uploads_per_minute"] = round(len(per_upload.seconds) / outcome.wall * 60, 1)
    result["MB_per_s"] = round(len(per_upload.seconds) * 5 / outcome.wall, 1)
    return result


def mode_capacity(target: Target, args: argparse.Namespace) -> dict[str, object]:
    """Rising levels of simultaneous 5 MB uploads, then downloads, until p95 > 4 s or an error."""
    data = os.urandom(5 * MB)
    md5 = hashlib.md5(data).hexdigest()
    report: dict[str, object] = {}
    for kind in ("upload", "download"):
        if kind == "download":
            upload(target, "cap/source.bin", in_memory(data), len(data), md5)
        best = 0
        for level in args.levels:
            if kind == "upload":
                jobs = [
                    lambda i=i, n=level: upload(target, f"cap/l{n}-{i}.bin", in_memory(data), len(data), md5)
                    for i in range(level)
                ]
            else:
                jobs = [lambda: download(target, "cap/source.bin", md5)] * level
            outcome = run_together(jobs)
            summary = outcome.summary()
            print(json.dumps({"mode": "capacity", "kind": kind, "level": level, **summary}), flush=True)
            if outcome.errors:
                print("  first error:", outcome.errors[0], flush=True)
            if outcome.errors or float(summary.get("p95_s", 1e9)) > P95_TARGET:
                break
            best = level
        report[f"{kind}_capacity"] = best
    return report


class RssSampler:
    """Samples the VmRSS of the target's processes (the process tree) every second."""

    def __init__(self, root_pid: int) -> None:
        """Watch ``root_pid`` and its descendants."""
        self.root_pid = root_pid
        self.samples: list[tuple[float, dict[int, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        began = time.monotonic()
        while not self._stop.wait(1.0 if self.samples else 0.0):
            self.samples.append((time.monotonic() - began, rss_by_process(self.root_pid)))

    def summary(self) -> dict[str, object]:
        """Total RSS (MiB) of python server processes: first, max, last sample."""
        totals = [round(sum(rss.values()) / 1024, 1) for _, rss in self.samples]
        return {
            "rss_mib_first": totals[0],
            "rss_mib_max": max(totals),
            "rss_mib_last": totals[-1],
            "rss_samples": len(totals),
        }


def rss_by_process(root: int) -> dict[int, int]:
    """VmRSS in KiB of ``root`` and all its descendants that are Python (the updl servers)."""
    found: dict[int, int] = {}
    pending = [root]
    while pending:
        pid = pending.pop()
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            for task in Path(f"/proc/{pid}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
        exe = os.path.basename(os.readlink(f"/proc/{pid}/exe")) if os.path.exists(f"/proc/{pid}/exe") else ""
        rss = re.search(r"VmRSS:\s+(\d+)", status)
        if rss and exe.startswith("python"):
            found[pid] = int(rss.group(1))
    return found


def mode_slow(target: Target, args: argparse.Namespace) -> dict[str, object]:
    """Many simultaneous slow uploads; every one must succeed; server memory is sampled."""
    size = args.kib * 1024
    data = os.urandom(size)
    md5 = hashlib.md5(data).hexdigest()
    pieces = 32
    piece = size // pieces
    pause = args.seconds / pieces

    def slow_chunks() -> Iterator[bytes]:
        # A random start spreads the clients' sends over the pause instead of in lockstep.
        time.sleep(pause * (uuid.uuid4().int % 1000) / 1000)
        for i in range(pieces):
            yield data[i * piece : (i + 1) * piece if i < pieces - 1 else size]
            time.sleep(pause)

    threading.stack_size(256 * 1024)
    jobs = [lambda i=i: upload(target, f"slow/{i}.bin", slow_chunks, size, md5) for i in range(args.clients)]
    with RssSampler(target.process.pid) as sampler:
        outcome = run_together(jobs)
    result: dict[str, object] = {**outcome.summary(), **sampler.summary()}
    result["rss_mib_series"] = [round(sum(r.values()) / 1024) for _, r in sampler.samples]
    if outcome.errors:
        result["first_error"] = outcome.errors[0]
    return result


def main() -> None:
    """Parse arguments, start the target, run one mode, print JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["original", "capacity", "slow"])
    parser.add_argument("--target", choices=["single", "workers", "cluster"], default="single")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=None)
    parser.add_argument("--uploads", type=int, default=10)
    parser.add_argument("--levels", default="10,25,50,100,200,400,800")
    parser.add_argument("--kib", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=25.0)
    args = parser.parse_args()
    args.levels = [int(x) for x in args.levels.split(",")]
    if args.clients is None:
        args.clients = 1000 if args.mode == "slow" else 10
    modes = {"original": mode_original, "capacity": mode_capacity, "slow": mode_slow}
    with started(args.target, args.workers) as target:
        result = modes[args.mode](target, args)
    print(
        json.dumps(
            {
                "mode": args.mode,
                "target": args.target,
                "workers": args.workers if args.target != "single" else 1,
                **result,
            }
        )
    )
    if any(k in result and result[k] for k in ("errors",)):
        sys.exit(1)


if __name__ == "__main__":
    main()
