"""``updl-server run --tls-cert/--tls-key``: files it cannot use are refused before it listens,
and the connection guard's own answers (431, 408, 503) still arrive, as JSON, over TLS."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from tests.support.api import answer, until_closed
from tests.support.live_server import LiveServer, clean_env, console_script
from tests.support.tls import TlsFiles, connect_tls, make_tls_files

DEADLINE = 15.0
HEAD = b"GET /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_server(tmp_path_factory: pytest.TempPathFactory, tls_files: TlsFiles) -> Iterator[Callable[..., LiveServer]]:
    """``tls_server(*args)``: an HTTPS server with the module's certificate and ``args``."""
    started: list[LiveServer] = []

    def start(*args: str) -> LiveServer:
        server = LiveServer(
            data_dir=tmp_path_factory.mktemp("tls-data"),
            args=(*tls_files.server_args(), *args),
            ca_bundle=str(tls_files.ca),
        )
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def run_server(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``updl-server run`` on a free port; it must exit by itself (a started server would time out)."""
    return subprocess.run(
        [console_script("updl-server"), "run", "--port", "0", "--data-dir", str(cwd / "data"), *args],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=cwd,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


def refusal(tls_files: TlsFiles, tmp_path: Path) -> Iterator[tuple[tuple[str, ...], str]]:
    """Unusable ``--tls-cert/--tls-key`` arguments and the one line each must get."""
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    other = make_tls_files(tmp_path / "other")
    missing = tmp_path / "missing.pem"
    yield ("--tls-cert", str(tls_files.cert)), "--tls-cert and --tls-key go together"
    yield ("--tls-cert", str(missing), "--tls-key", str(tls_files.key)), f"cannot read --tls-cert {missing}: "
    yield ("--tls-cert", str(junk), "--tls-key", str(tls_files.key)), f"--tls-cert {junk} is not a PEM certificate"
    yield (
        ("--tls-cert", str(tls_files.cert), "--tls-key", str(other.key)),
        f"--tls-key {other.key} is not the private key of --tls-cert {tls_files.cert}",
    )
    yield (
        ("--tls-cert", str(tls_files.cert), "--tls-key", str(junk)),
        "the key must be an unencrypted PEM private key",
    )


def test_unusable_certificate_or_key_is_refused_before_listening(tls_files: TlsFiles, tmp_path: Path) -> None:
    for args, expected in refusal(tls_files, tmp_path):
        result = run_server(*args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: "), result.stderr
        assert expected in result.stderr
        assert "listening" not in result.stderr


def test_environment_variables_name_the_pair(tmp_path_factory: pytest.TempPathFactory, tls_files: TlsFiles) -> None:
    server = LiveServer(
        data_dir=tmp_path_factory.mktemp("tls-env"),
        env={"UPDL_SERVER_TLS_CERT": str(tls_files.cert), "UPDL_SERVER_TLS_KEY": str(tls_files.key)},
        ca_bundle=str(tls_files.ca),
    )
    server.start()
    try:
        assert server.url.startswith("https://")
        assert requests.get(f"{server.url}/health", timeout=10, verify=str(tls_files.ca)).json()["status"] == "ok"
    finally:
        server.stop()


def test_guard_answers_arrive_over_tls(tls_server: Callable[..., LiveServer], tls_files: TlsFiles) -> None:
    server = tls_server(
        "--max-header-size", "8KiB", "--header-timeout", "2", "--max-connections", "1", "--workers", "1"
    )  # the cap is per worker
    big = connect_tls(server.url, tls_files.ca, DEADLINE)
    big.sendall(HEAD.replace(b"Host: test\r\n", b"Host: test\r\nX-Big: " + b"a" * 10_000 + b"\r\n"))
    status, body = answer(until_closed(big))
    assert (status, body["max_header_size"]) == (431, 8 * 1024)

    slow = connect_tls(server.url, tls_files.ca, DEADLINE)
    slow.sendall(b"GET /health HTTP/1.1\r\n")  # and nothing more
    status, body = answer(until_closed(slow))
    assert (status, body["timeout"]) == (408, 2.0)

    held = connect_tls(server.url, tls_files.ca, DEADLINE)
    try:
        held.sendall(b"GET /hea")
        refused = connect_tls(server.url, tls_files.ca, DEADLINE)
        refused.sendall(HEAD)
        status, body = answer(until_closed(refused))
        assert (status, body["max_connections"]) == (503, 1)
    finally:
        held.close()
