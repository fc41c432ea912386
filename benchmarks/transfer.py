"""Transfer benchmarks for updl on loopback: run by hand, results go into docs/benchmarks.md.

    .venv/bin/python benchmarks/transfer.py [--size-mib 1024] [--runs 5] [--small-files 1000] [--big-rss-gib 4]

Needs hyperfine, curl, md5sum, aria2c, nginx and /usr/bin/time on PATH
(Debian: ``apt-get install hyperfine curl aria2 nginx time``). Everything runs
on 127.0.0.1 in a temporary directory that is removed at the end; every
transfer is bounded (hyperfine runs a fixed number of times).

What it measures (medians of ``--runs`` runs, same files, same machine):

1. upload of one big file: ``updl put`` (resumable tus above 64 MiB, the default) and ``updl put``
   forced onto one multipart POST, vs ``md5sum`` then ``curl -F file=@ -F md5=`` (the two-pass way);
2. download: ``updl get`` vs ``curl -o`` then ``md5sum``, and vs ``aria2c --checksum=md5=``;
3. the server against nginx: ``curl -T`` (PUT) and ``curl -o /dev/null`` to updl-server and to nginx
   (WebDAV PUT written to disk, also followed by ``sync FILE`` since updl-server fsyncs before it
   answers; the same file served statically);
4. many small files: ``updl put --jobs 8`` vs a shell loop of ``md5sum`` + ``curl -F`` per file;
5. peak RSS (VmHWM) of client and server for a 100 MiB and a ``--big-rss-gib`` GiB transfer.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
NGINX_CONF = """
worker_processes 2;
pid {root}/nginx.pid;
error_log {root}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {root}/nginx-body;
    proxy_temp_path {root}/nginx-proxy;
    fastcgi_temp_path {root}/nginx-fastcgi;
    uwsgi_temp_path {root}/nginx-uwsgi;
    scgi_temp_path {root}/nginx-scgi;
    sendfile on;
    tcp_nopush on;
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 0;
        location /dav/ {{
            root {root}/nginx-www;
            dav_methods PUT DELETE;
            create_full_put_path on;
        }}
    }}
}}
"""


def sh(cmd: str, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, shell=True, check=True, text=True, capture_output=True, **kw)


def make_file(path: Path, size: int) -> None:
    """Random content, written in 8 MiB pieces (never the whole file in memory)."""
    with open(path, "wb") as fh:
        left = size
        while left:
            piece = min(left, 8 << 20)
            fh.write(os.urandom(piece))
            left -= piece


class Server:
    """A real updl-server process with one user."""

    def __init__(self, root: Path) -> None:
        self.data = root / "server-data"
        log = open(root / "server.log", "w")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [str(BIN / "updl-server"), "run", "--port", "0", "--data-dir", str(self.data), "--log-level", "warning"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            match = re.search(r"listening on (http://\S+)", (root / "server.log").read_text())
            if match:
                self.url = match.group(1)
                break
            time.sleep(0.05)
        else:
            raise SystemExit("updl-server did not start")
        self.token = sh(f"{BIN / 'updl-server'} add-user bench --data-dir {self.data}").stdout.strip()

    def peak_rss_kib(self) -> int:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+)", status).group(1))  # type: ignore[union-attr]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)


def hyperfine(root: Path, runs: int, commands: dict[str, str], prepare: str | None = None) -> dict[str, float]:
    """Median seconds per command."""
    out = root / "hyperfine.json"
    args = ["hyperfine", "--runs", str(runs), "--warmup", "1", "--export-json", str(out), "--style", "basic"]
    if prepare:
        args += ["--prepare", prepare]
    for name, cmd in commands.items():
        args += ["--command-name", name, cmd]
    subprocess.run(args, check=True, stdout=sys.stderr)
    return {r["command"]: statistics.median(r["times"]) for r in json.loads(out.read_text())["results"]}


def client_peak_rss_kib(cmd: str, env: dict[str, str]) -> int:
    result = subprocess.run(["/usr/bin/time", "-v", "sh", "-c", cmd], env=env, text=True, capture_output=True)
    if result.returncode:
        raise SystemExit(f"failed: {cmd}\n{result.stderr}")
    return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--small-files", type=int, default=1000)
    parser.add_argument("--big-rss-gib", type=int, default=4)
    parser.add_argument("--nginx-port", type=int, default=18080)
    parser.add_argument("--skip", action="append", default=[], help="section to skip: upload download nginx small rss")
    opts = parser.parse_args()
    for tool in ("hyperfine", "curl", "md5sum", "aria2c", "nginx"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed")

    root = Path(tempfile.mkdtemp(prefix="updl-bench-"))
    server = Server(root)
    (root / "nginx-www" / "dav").mkdir(parents=True)
    # nginx's workers run as an unprivileged user: let them in and let them write the PUT bodies.
    root.chmod(0o755)
    (root / "nginx-www" / "dav").chmod(0o777)
    (root / "nginx.conf").write_text(NGINX_CONF.format(root=root, port=opts.nginx_port))
    subprocess.run(["nginx", "-c", str(root / "nginx.conf")], check=True)
    nginx = f"http://127.0.0.1:{opts.nginx_port}"
    env = {**os.environ, "UPDL_URL": server.url, "UPDL_TOKEN": server.token, "PATH": f"{BIN}:{os.environ['PATH']}"}
    os.environ.update(env)
    auth = f"-H 'Authorization: Bearer {server.token}'"
    results: dict[str, object] = {"size_mib": opts.size_mib, "runs": opts.runs}
    try:
        big = root / "big.bin"
        make_file(big, opts.size_mib << 20)
        size = big.stat().st_size
        mib = size / (1 << 20)

        if "upload" not in opts.skip:
            up = hyperfine(
                root,
                opts.runs,
                {
                    "updl put": f"updl -q put {big} --name big",
                    "updl put (multipart)": f"updl -q put {big} --name big --resumable-threshold 1T",
                    "md5sum + curl -F": (
                        f"curl -sf {auth} -F file=@{big} -F md5=$(md5sum {big} | cut -c1-32) "
                        f"{server.url}/upload -o /dev/null"
                    ),
                },
            )
            results["upload"] = up
        if "download" not in opts.skip:
            sh(f"updl -q put {big} --name big")
            md5 = sh(f"md5sum {big}").stdout[:32]
            out = root / "out.bin"
            down = hyperfine(
                root,
                opts.runs,
                {
                    "updl get": f"updl -q get big -o {out}",
                    "curl -o + md5sum": f"curl -sf {auth} {server.url}/files/big -o {out} && md5sum {out} >/dev/null",
                    "aria2c --checksum": (
                        f"aria2c -q --allow-overwrite=true --auto-file-renaming=false "
                        f"--header='Authorization: Bearer {server.token}' --checksum=md5={md5} "
                        f"-d {root} -o out.bin {server.url}/files/big"
                    ),
                },
                prepare=f"rm -f {out}",
            )
            results["download"] = down
        if "nginx" not in opts.skip:
            srv = hyperfine(
                root,
                opts.runs,
                {
                    "updl-server PUT": f"curl -sf {auth} -T {big} {server.url}/files/big-put -o /dev/null",
                    "nginx PUT": f"curl -sf -T {big} {nginx}/dav/big-put -o /dev/null",
                    # updl-server fsyncs before it answers; nginx does not: the same durability, for a fair pair
                    "nginx PUT + sync": (
                        f"curl -sf -T {big} {nginx}/dav/big-put -o /dev/null && sync {root}/nginx-www/dav/big-put"
                    ),
                    "updl-server GET": f"curl -sf {auth} {server.url}/files/big-put -o /dev/null",
                    "nginx GET": f"curl -sf {nginx}/dav/big-put -o /dev/null",
                },
            )
            results["server_vs_nginx"] = {k: {"seconds": v, "MiB/s": mib / v} for k, v in srv.items()}
        if "small" not in opts.skip:
            small = root / "small"
            small.mkdir()
            for i in range(opts.small_files):
                (small / f"f{i:04d}.bin").write_bytes(os.urandom(64 * 1024))
            loop = (
                f"for f in {small}/*; do curl -sf {auth} -F file=@$f -F md5=$(md5sum $f | cut -c1-32) "
                f"{server.url}/upload -o /dev/null || exit 1; done"
            )
            many = hyperfine(
                root,
                max(1, opts.runs // 2),
                {
                    "updl put --jobs 8": f"cd {small} && updl -q put --jobs 8 --prefix small/ *",
                    "shell loop of curl": loop,
                },
            )
            results["small_files"] = {k: {"seconds": v, "files/s": opts.small_files / v} for k, v in many.items()}
        if "rss" not in opts.skip:
            rss: dict[str, dict[str, int]] = {}
            for label, nbytes in (("100 MiB", 100 << 20), (f"{opts.big_rss_gib} GiB", opts.big_rss_gib << 30)):
                src = root / "rss.bin"
                make_file(src, nbytes)
                rss_root = root / "rss-server"
                rss_root.mkdir()
                fresh = Server(rss_root)
                renv = {**env, "UPDL_URL": fresh.url, "UPDL_TOKEN": fresh.token}
                put_kib = client_peak_rss_kib(f"updl -q put {src} --name rss", renv)
                get_kib = client_peak_rss_kib(f"updl -q get rss -o {root / 'rss.out'}", renv)
                rss[label] = {"client put KiB": put_kib, "client get KiB": get_kib, "server KiB": fresh.peak_rss_kib()}
                fresh.stop()
                shutil.rmtree(rss_root, ignore_errors=True)
                src.unlink()
                (root / "rss.out").unlink()
            results["peak_rss"] = rss
    finally:
        subprocess.run(["nginx", "-c", str(root / "nginx.conf"), "-s", "stop"], check=False)
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(results, indent=2))
    print(f"# command: {shlex.join([sys.executable, *sys.argv])}", file=sys.stderr)


if __name__ == "__main__":
    main()
