"""What metrics and the audit log cost a server: run by hand; the figures go into docs/benchmarks.md.

    .venv/bin/python benchmarks/observe.py [--requests 2000] [--big-mib 512] [--rounds 3]

Starts one ``updl-server run`` per configuration in a temporary data dir (removed
at the end): ``off`` (the default: neither), ``metrics`` (``--metrics-token``) and
``metrics+audit`` (also ``--audit-log`` to a file), and measures, alternating the
configurations round by round so drift spreads evenly over them:
- small requests: ``--requests`` sequential ``PUT``s of 1 KiB on one kept-alive
  connection, each answer's MD5 checked -> requests per second;
- one big ``PUT`` of ``--big-mib`` MiB -> MiB/s.
The client runs on the same cores as the server: compare configurations, not machines.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / ".venv" / "bin" / "updl-server"
METRICS_TOKEN = "benchmark-metrics-token-0123456789"
CHUNK = 1024 * 1024
CONFIGS = {
    "off": [],
    "metrics": ["--metrics-token", METRICS_TOKEN],
    "metrics+audit": ["--metrics-token", METRICS_TOKEN, "--audit-log", "{work}/audit.log"],
}


@contextmanager
def server(args: list[str]) -> Iterator[tuple[tuple[str, int], str]]:
    """A server with ``args`` in a fresh data dir: its address and a user's token."""
    work = Path(tempfile.mkdtemp(prefix="updl-observe-"))
    data_dir = work / "data"
    token = subprocess.run(
        [str(SERVER), "add-user", "bench", "--data-dir", str(data_dir)], check=True, capture_output=True, text=True
    ).stdout.strip()
    cmd = [str(SERVER), "run", "--port", "0", "--data-dir", str(data_dir), "--log-level", "warning"]
    process = subprocess.Popen([*cmd, *(a.format(work=work) for a in args)], stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        match = re.search(r"http://([\d.]+):(\d+)", process.stderr.readline())
        assert match, "the server did not start"
        threading.Thread(target=process.stderr.read, daemon=True).start()
        yield (match.group(1), int(match.group(2))), token
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


def small_puts(address: tuple[str, int], token: str, count: int) -> float:
    """Requests per second of ``count`` 1 KiB PUTs on one connection."""
    body = bytes(range(256)) * 4
    md5 = hashlib.md5(body).hexdigest()
    conn = http.client.HTTPConnection(*address, timeout=60)
    began = time.perf_counter()
    for i in range(count):
        conn.request("PUT", f"/files/small/{i}", body=body, headers={"Authorization": f"Bearer {token}"})
        answer = conn.getresponse()
        assert answer.status == 200 and json.loads(answer.read())["md5"] == md5
    elapsed = time.perf_counter() - began
    conn.close()
    return count / elapsed


def big_put(address: tuple[str, int], token: str, mib: int) -> float:
    """MiB/s of one PUT of ``mib`` MiB (a repeating pattern, hashed as it is sent)."""
    chunk = bytes(range(256)) * (CHUNK // 256)
    digest = hashlib.md5()
    conn = http.client.HTTPConnection(*address, timeout=300)
    began = time.perf_counter()
    conn.putrequest("PUT", "/files/big")
    conn.putheader("Authorization", f"Bearer {token}")
    conn.putheader("Content-Length", str(mib * CHUNK))
    conn.endheaders()
    for _ in range(mib):
        conn.send(chunk)
        digest.update(chunk)
    answer = conn.getresponse()
    assert answer.status == 200 and json.loads(answer.read())["md5"] == digest.hexdigest()
    elapsed = time.perf_counter() - began
    conn.close()
    return mib / elapsed


def main() -> None:
    """Measure every configuration, alternating, and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--big-mib", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    small: dict[str, list[float]] = {name: [] for name in CONFIGS}
    big: dict[str, list[float]] = {name: [] for name in CONFIGS}
    for _ in range(args.rounds):
        for name, flags in CONFIGS.items():
            with server(flags) as (address, token):
                small[name].append(small_puts(address, token, args.requests))
                big[name].append(big_put(address, token, args.big_mib))
    print(f"| configuration | 1 KiB PUTs/s (median of {args.rounds}) | {args.big_mib} MiB PUT, MiB/s (median) |")
    print("| --- | --- | --- |")
    for name in CONFIGS:
        print(
            f"| {name} | {statistics.median(small[name]):.0f} ({min(small[name]):.0f}-{max(small[name]):.0f}) "
            f"| {statistics.median(big[name]):.0f} ({min(big[name]):.0f}-{max(big[name]):.0f}) |"
        )


if __name__ == "__main__":
    main()
