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
5. peak RSS (VmHWM) of client and server for a 100 MiB and a ``--big-rss-gib`` GiB transfer;
6. ``link``: upload and download through ``benchmarks/linkproxy.py`` at each ``--link-rtts`` round trip
   (``direct``: no proxy): default ``updl put`` vs ``md5sum`` + ``curl -F`` and vs ``updl put`` as one
   multipart POST; ``updl get`` (parallel ranges) vs ``updl get --connections 1``, ``curl -o`` + ``md5sum``
   and a single ``curl -o``. The commands alternate run by run (a noisy shared machine drifts), medians
   and ratios come from the same runs; ``--link-size-mib`` sets the file's size.
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


def alternate(commands: dict[str, str], runs: int, prepare: str | None = None) -> dict[str, list[float]]:
    """Seconds of each run of each command, the commands taking turns (one warm-up round first)."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for round_ in range(runs + 1):
        for name, cmd in commands.items():
            if prepare:
                sh(prepare)
            start = time.perf_counter()
            sh(cmd)
            if round_:
                times[name].append(time.perf_counter() - start)
    return times


class Proxy:
    """benchmarks/linkproxy.py in its own process, in front of ``target_url``."""

    def __init__(self, target_url: str, rtt_ms: float) -> None:
        host_port = target_url.split("//", 1)[1]
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).with_name("linkproxy.py")),
                "--target",
                host_port,
                "--rtt-ms",
                str(rtt_ms),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        match = re.search(r"listening on (\S+)", line)
        if not match:
            raise SystemExit(f"linkproxy did not start: {line!r}")
        self.url = f"http://{match.group(1)}"

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)


def link(root: Path, server: Server, rtts: list[str], size_mib: int, runs: int) -> dict[str, object]:
    """Section 6: uploads and downloads through the link proxy (see the module docstring)."""
    src = root / "link.bin"
    make_file(src, size_mib << 20)
    out = root / "link.out"
    auth = f"-H 'Authorization: Bearer {server.token}'"
    sh(f"updl -q put {src} --name link")
    results: dict[str, object] = {}
    for rtt in rtts:
        proxy = None if rtt == "direct" else Proxy(server.url, float(rtt))
        url = server.url if proxy is None else proxy.url
        try:
            up = alternate(
                {
                    "updl put": f"UPDL_URL={url} updl -q put {src} --name link-up",
                    "updl put (multipart)": f"UPDL_URL={url} updl -q put {src} --name link-up --resumable-threshold 1T",
                    "md5sum + curl -F": (
                        f"curl -sf {auth} -F file=@{src} -F md5=$(md5sum {src} | cut -c1-32) {url}/upload -o /dev/null"
                    ),
                },
                runs,
            )
            down = alternate(
                {
                    "updl get": f"UPDL_URL={url} updl -q get link -o {out}",
                    "updl get --connections 1": f"UPDL_URL={url} updl -q get link -o {out} --connections 1",
                    "curl -o + md5sum": f"curl -sf {auth} {url}/files/link -o {out} && md5sum {out} >/dev/null",
                    "curl -o": f"curl -sf {auth} {url}/files/link -o {out}",
                },
                runs,
                prepare=f"rm -f {out}",
            )
        finally:
            if proxy is not None:
                proxy.stop()
        med = {k: statistics.median(v) for k, v in {**up, **down}.items()}
        results[f"rtt {rtt}" + ("" if rtt == "direct" else " ms")] = {
            "median seconds": med,
            "runs": {**up, **down},
            "put / (md5sum + curl -F)": med["updl put"] / med["md5sum + curl -F"],
            "put / multipart put": med["updl put"] / med["updl put (multipart)"],
            "get / (curl -o + md5sum)": med["updl get"] / med["curl -o + md5sum"],
            "curl -o / get (speed-up)": med["curl -o"] / med["updl get"],
        }
        print(json.dumps({rtt: results[list(results)[-1]]}, indent=1), file=sys.stderr)
    src.unlink()
    out.unlink(missing_ok=True)
    return results


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
    parser.add_argument(
        "--skip", action="append", default=[], help="section to skip: upload download nginx small rss link"
    )
    parser.add_argument("--link-rtts", default="direct,0,20,50", help="round trips (ms) for the link section")
    parser.add_argument("--link-size-mib", type=int, default=None, help="file size for the link section")
    parser.add_argument("--link-runs", type=int, default=None, help="runs for the link section")
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
    # The same file goes up again and again: without this, upload by content would link it
    # (no bytes sent) from the second run on. This script measures transfers.
    (root / "updl.toml").write_text("[default]\ndedup = false\n")
    env = {
        **os.environ,
        "UPDL_URL": server.url,
        "UPDL_TOKEN": server.token,
        "UPDL_CONFIG": str(root / "updl.toml"),
        "PATH": f"{BIN}:{os.environ['PATH']}",
    }
    os.environ.update(env)
    auth = f"-H 'Authorization: Bearer {server.token}'"
    results: dict[str, object] = {"size_mib": opts.size_mib, "runs": opts.runs}
    try:
        if "link" not in opts.skip:
            results["link"] = link(
                root,
                server,
                opts.link_rtts.split(","),
                opts.link_size_mib or opts.size_mib,
                opts.link_runs or opts.runs,
            )
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
