"""Two updl-server builds side by side: ``curl -T`` of one big file, the runs alternating.

    .venv/bin/python benchmarks/server_ab.py --baseline OTHER_CHECKOUT/.venv/bin/updl-server \
        [--candidate .venv/bin/updl-server] [--size-mib 1024] [--runs 5]

For the cost of a server change on the upload path (the SHA-256 that every
upload now also computes, for example): both servers run at once on
127.0.0.1 with their own data directory in one temporary directory; each run
PUTs the same file to one then the other (the order swapped every run, as this
disk's speed moves by ±30% from run to run), and prints the medians, MiB/s and
the ratio. Run by hand; results go into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sync
from dedup import MIB, write_file


class Server(sync.Server):
    """A server (``binary``) to PUT one file to."""

    def put(self, path: Path) -> float:
        started = time.monotonic()
        subprocess.run(
            ["curl", "-sSf", "-o", "/dev/null", "-T", str(path), "-H", f"Authorization: Bearer {self.token}",
             f"{self.url}/files/bench.bin"],
            check=True,
        )  # fmt: skip
        return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", required=True, help="the other build's updl-server")
    parser.add_argument("--candidate", default=str(sync.BIN / "updl-server"))
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=5)
    opts = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="updl-server-ab-"))
    servers: list[Server] = []
    try:
        big = root / "big.bin"
        write_file(big, opts.size_mib * MIB)
        servers = [Server(root, opts.baseline, "baseline"), Server(root, opts.candidate, "candidate")]
        times: list[list[float]] = [[], []]
        for run in range(opts.runs):
            for index in (0, 1) if run % 2 == 0 else (1, 0):
                times[index].append(servers[index].put(big))
        for label, values in zip(("baseline", "candidate"), times, strict=True):
            median = statistics.median(values)
            shown = ", ".join(f"{v:.2f}" for v in values)
            print(f"{label:9s} {median:6.2f} s  {opts.size_mib / median:7.0f} MiB/s   ({shown})")
        print(f"candidate / baseline time: {statistics.median(times[1]) / statistics.median(times[0]):.2f}")
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
