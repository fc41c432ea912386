"""Parallel tus parts (``updl put --parts N``) on loopback: run by hand, results go into docs/benchmarks.md.

    .venv/bin/python benchmarks/parts.py [--size-mib 1024] [--runs 3] [--parts 1,2,4] [--proxy HOST:PORT]

Needs hyperfine. Starts its own updl-server in a temporary directory (removed
at the end) and measures, medians of ``--runs``:

1. ``updl put --parts N`` for each N (``--parts 1`` is the plain resumable upload), and
   ``updl put --resumable-threshold 1T`` (one multipart POST) for reference; with ``--proxy``
   (a ``benchmarks/linkproxy.py`` in front of the server, if there is one) the client goes
   through it;
2. the server's join of a concatenation on local disk: four 256 MiB partial uploads are sent
   raw, then the final ``POST`` (MD5 of the parts in order + the join itself) is timed, against
   ``md5sum`` of the same bytes (the hash alone) and a ``cp`` of the file (what a copying join
   would cost at least).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).parent))
from transfer import BIN, Server, hyperfine, make_file

TUS = {"Tus-Resumable": "1.0.0"}


class _Range:
    """A sized reader over ``[start, end)`` of a file, for a streamed PATCH body."""

    def __init__(self, path: Path, start: int, end: int) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed when read to the end
        self._file.seek(start)
        self._left = end - start

    def __len__(self) -> int:
        return self._left

    def read(self, size: int = -1) -> bytes:
        if not self._left:
            self._file.close()
            return b""
        want = self._left if size is None or size < 0 else min(size, self._left)
        data = self._file.read(want)
        self._left -= len(data)
        return data


def join_seconds(server: Server, big: Path, parts: int) -> tuple[float, str]:
    """Send ``big`` as ``parts`` raw partial uploads, then time the final POST alone."""
    auth = {**TUS, "Authorization": f"Bearer {server.token}"}
    size = big.stat().st_size
    step = -(-size // parts)
    urls = []
    for start in range(0, size, step):
        end = min(start + step, size)
        created = requests.post(
            f"{server.url}/tus/", headers={**auth, "Upload-Length": str(end - start), "Upload-Concat": "partial"}
        )
        created.raise_for_status()
        url = created.headers["Location"]
        stream = {**auth, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}
        requests.patch(url, data=_Range(big, start, end), headers=stream).raise_for_status()
        urls.append(url)
    name = base64.b64encode(f"joined-{time.monotonic_ns()}".encode()).decode()
    began = time.monotonic()
    final = requests.post(
        f"{server.url}/tus/",
        headers={**auth, "Upload-Concat": "final;" + " ".join(urls), "Upload-Metadata": f"name {name}"},
    )
    seconds = time.monotonic() - began
    final.raise_for_status()
    return seconds, final.headers["Upload-Md5"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--parts", default="1,2,4")
    parser.add_argument("--proxy", help="HOST:PORT of a proxy in front of the server (e.g. benchmarks/linkproxy.py)")
    parser.add_argument("--skip", action="append", default=[], help="section to skip: put join")
    opts = parser.parse_args()
    if shutil.which("hyperfine") is None:
        raise SystemExit("hyperfine is not installed")
    root = Path(tempfile.mkdtemp(prefix="updl-parts-"))
    server = Server(root)
    url = f"http://{opts.proxy}" if opts.proxy else server.url
    # The same file again and again: send it, never link it (upload by content).
    (root / "updl.toml").write_text("[default]\ndedup = false\n")
    os.environ.update(
        {
            "UPDL_URL": url,
            "UPDL_TOKEN": server.token,
            "UPDL_CONFIG": str(root / "updl.toml"),
            "PATH": f"{BIN}:{os.environ['PATH']}",
        }
    )
    try:
        big = root / "big.bin"
        make_file(big, opts.size_mib << 20)
        if "put" not in opts.skip:
            commands = {
                f"updl put --parts {n}": f"updl -q put {big} --name big --parts {n}" for n in opts.parts.split(",")
            }
            commands["updl put (multipart)"] = f"updl -q put {big} --name big --resumable-threshold 1T"
            for name, seconds in hyperfine(root, opts.runs, commands).items():
                print(f"{name}: {seconds:.2f} s ({opts.size_mib / seconds:.0f} MiB/s)")
        if "join" not in opts.skip:
            expected = hashlib.md5(usedforsecurity=False)
            with open(big, "rb") as fh:
                while chunk := fh.read(8 << 20):
                    expected.update(chunk)
            joins = []
            for _ in range(opts.runs):
                seconds, md5 = join_seconds(server, big, 4)
                assert md5 == expected.hexdigest(), (md5, expected.hexdigest())
                joins.append(seconds)
            hashing = []
            copying = []
            for _ in range(opts.runs):
                began = time.monotonic()
                subprocess.run(["md5sum", str(big)], check=True, capture_output=True)
                hashing.append(time.monotonic() - began)
                began = time.monotonic()
                subprocess.run(["cp", str(big), str(root / "copy.bin")], check=True)
                subprocess.run(["sync", str(root / "copy.bin")], check=True)
                copying.append(time.monotonic() - began)
                (root / "copy.bin").unlink()
            print(f"final POST of 4 parts (MD5 of the parts + join): {statistics.median(joins):.2f} s")
            print(f"md5sum of the file: {statistics.median(hashing):.2f} s")
            print(f"cp + sync of the file (a copying join): {statistics.median(copying):.2f} s")
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
