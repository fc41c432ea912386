"""Upload by content: re-uploading a big file under a new name, against hashing it locally.

    .venv/bin/python benchmarks/dedup.py [--size-mib 1024] [--runs 3] [--rtt-ms 0,50]

The CI case: each pipeline stores the same artifact under a new prefix
(``build/$ID/``). Run by hand; results go into docs/benchmarks.md. Everything
runs on 127.0.0.1 in a temporary directory that is removed at the end; at each
``--rtt-ms`` above 0 the client goes through ``benchmarks/linkproxy.py``.

Per round trip time, medians of ``--runs`` runs, the commands alternating:

1. ``openssl dgst -sha256 FILE``: the local hash time, the floor (OpenSSL uses
   the CPU's SHA extensions, as Python's ``hashlib`` does; coreutils'
   ``sha256sum`` here does not and is shown for comparison);
2. ``updl put FILE --name build/N/app.bin`` of content the server holds: linked,
   the script asserts "(no bytes sent)";
3. ``updl put`` of new content (one byte changed) with the offer, and
4. the same with ``--no-dedup``: what the offer costs a file the server lacks.

The target: (2) at most (1) plus one round trip. The client is a new process
each time, so (2) also holds the interpreter's start (measured as ``updl --version``);
"SDK upload, linked" times ``Client.upload`` inside its process, without that start.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from linkproxy import LinkProxy
from sync import BIN, Server, timed

MIB = 1024 * 1024


SDK_LINK = """
import sys, time, updl
with updl.Client() as client:
    started = time.monotonic()
    info = client.upload(sys.argv[1], sys.argv[2])
    print(time.monotonic() - started)
"""


def sdk_linked(path: Path, name: str, env: dict[str, str]) -> float:
    """Seconds of one ``Client.upload`` of content the server holds, timed inside the client's process."""
    return float(timed([sys.executable, "-c", SDK_LINK, str(path), name], env)[1])


def write_file(path: Path, size: int) -> None:
    """Deterministic, incompressible-looking bytes (a counter through SHA-256), written in 1 MiB blocks."""
    import hashlib

    block = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(MIB // 32))
    with path.open("wb") as f:
        for i in range(size // MIB):
            f.write(block[i % 32 :] + block[: i % 32])
        f.write(block[: size % MIB])


def flip_last_byte(path: Path) -> None:
    with path.open("r+b") as f:
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 0xFF]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rtt-ms", default="0,50", help="comma-separated round trip times (0: direct)")
    opts = parser.parse_args()
    if shutil.which("sha256sum") is None or shutil.which("openssl") is None:
        raise SystemExit("sha256sum (coreutils) and openssl are needed")
    root = Path(tempfile.mkdtemp(prefix="updl-dedup-bench-"))
    server = None
    try:
        big = root / "app.bin"
        fresh = root / "fresh.bin"
        write_file(big, opts.size_mib * MIB)
        server = Server(root)
        env = {**os.environ, "UPDL_URL": server.url, "UPDL_TOKEN": server.token}
        updl = str(BIN / "updl")
        timed([updl, "-q", "put", str(big), "--name", "build/0/app.bin"], env)
        counter = 0
        for rtt_ms in (int(v) for v in opts.rtt_ms.split(",")):
            proxy = None
            url = server.url
            if rtt_ms:
                port = int(server.url.rsplit(":", 1)[1])
                proxy = LinkProxy(("127.0.0.1", port), rtt=rtt_ms / 1000).start()
                url = f"http://127.0.0.1:{proxy.port}"
            run_env = {**env, "UPDL_URL": url}
            results: dict[str, list[float]] = {
                "openssl dgst -sha256": [],
                "sha256sum": [],
                "updl --version": [],
                "put, content held (linked)": [],
                "SDK upload, linked (in-process)": [],
                "put, new content, with the offer": [],
                "put, new content, --no-dedup": [],
            }
            for _ in range(opts.runs):
                results["openssl dgst -sha256"].append(timed(["openssl", "dgst", "-sha256", str(big)], run_env)[0])
                results["sha256sum"].append(timed(["sha256sum", str(big)], run_env)[0])
                results["updl --version"].append(timed([updl, "--version"], run_env)[0])
                counter += 1
                seconds, out = timed([updl, "put", str(big), "--name", f"build/{counter}/app.bin"], run_env)
                if "(no bytes sent)" not in out:
                    raise SystemExit(f"not linked: {out}")
                results["put, content held (linked)"].append(seconds)
                counter += 1
                results["SDK upload, linked (in-process)"].append(sdk_linked(big, f"sdk/{counter}/app.bin", run_env))
                for label, extra in (("with the offer", []), ("--no-dedup", ["--no-dedup"])):
                    shutil.copyfile(big, fresh)
                    flip_last_byte(fresh)
                    counter += 1
                    name = f"new/{counter}/app.bin"
                    seconds, out = timed([updl, "put", str(fresh), "--name", name, *extra], run_env)
                    if "(no bytes sent)" in out:
                        raise SystemExit(f"new content was linked: {out}")
                    results[f"put, new content, {label}"].append(seconds)
                    subprocess.run([updl, "-q", "rm", name], env=run_env, check=True)
            if proxy is not None:
                proxy.close()
            print(f"\n{opts.size_mib} MiB, RTT {rtt_ms} ms{' (direct)' if not rtt_ms else ''}, medians of {opts.runs}:")
            for label, values in results.items():
                shown = ", ".join(f"{v:.2f}" for v in values)
                print(f"  {label:36s} {statistics.median(values):6.2f} s   ({shown})")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
