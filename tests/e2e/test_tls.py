"""The CLI against the real server over HTTPS, with a CA and certificate the test makes.

A self-signed deployment works once the client is told which CA to trust (``--ca-bundle``,
``UPDL_CA_BUNDLE``, ``ca_bundle`` in the config file, or requests' own ``REQUESTS_CA_BUNDLE``),
and without that it fails at once, in one line that names the certificate and the fix.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import requests

import updl
from tests.support.files import md5_hex
from tests.support.live_server import LiveServer
from tests.support.tls import TlsFiles, make_tls_files
from updl.sdk.config import load_settings
from updl.sdk.transport import build_session

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A CA of this module and a server certificate for 127.0.0.1 from it."""
    return make_tls_files(tmp_path_factory.mktemp("tls"))


def start_tls_server(tmp_path_factory: pytest.TempPathFactory, files: TlsFiles, *args: str) -> LiveServer:
    """``updl-server run --tls-cert ... --tls-key ...`` on a free port of 127.0.0.1."""
    server = LiveServer(
        data_dir=tmp_path_factory.mktemp("tls-server-data"), args=(*files.server_args(), *args), ca_bundle=str(files.ca)
    )
    server.start()
    return server


@pytest.fixture(scope="module", params=["1", "2"], ids=["one-process", "two-workers"])
def tls_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tls_files: TlsFiles
) -> Iterator[LiveServer]:
    """An HTTPS server, with one process and with two forked workers on one socket."""
    server = start_tls_server(tmp_path_factory, tls_files, "--workers", request.param)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def one_tls_server(tmp_path_factory: pytest.TempPathFactory, tls_files: TlsFiles) -> Iterator[LiveServer]:
    """One HTTPS server for the tests that need only one."""
    server = start_tls_server(tmp_path_factory, tls_files)
    yield server
    server.stop()


def test_put_and_get_over_https_with_ca_bundle(
    tls_server: LiveServer, tls_files: TlsFiles, run_updl, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    assert tls_server.url.startswith("https://127.0.0.1:")  # what the listening line announced
    token = tls_server.add_user("alice")
    source = make_file("report.bin", 300_000)
    ca = ("--ca-bundle", str(tls_files.ca))
    for attempt in range(4):  # several connections: with two workers, both get some
        put = run_updl(tls_server, token, *ca, "--json", "put", str(source), "--name", f"tls/{attempt}.bin")
        assert put.returncode == 0, put.stderr
        assert json.loads(put.stdout.splitlines()[0])["md5"] == md5_hex(source)
        out = tmp_path / f"out{attempt}"
        out.mkdir()
        get = run_updl(tls_server, token, "get", f"tls/{attempt}.bin", "-o", str(out), *ca)
        assert get.returncode == 0, get.stderr
        assert md5_hex(out / f"{attempt}.bin") == md5_hex(source)


def test_without_the_ca_the_certificate_is_refused_in_one_line_without_retrying(
    one_tls_server: LiveServer, run_updl
) -> None:
    token = one_tls_server.add_user("bob")
    result = run_updl(one_tls_server, token, "ls")
    assert result.returncode == 6
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr  # no retry line before it
    assert result.stderr.startswith(
        f"updl: error: the certificate of {one_tls_server.url} does not verify "
        "(certificate verify failed: unable to get local issuer certificate); "
    )
    assert "pass --ca-bundle / UPDL_CA_BUNDLE" in result.stderr


def test_a_bundle_of_another_ca_is_refused_and_named(
    one_tls_server: LiveServer, run_updl, tmp_path_factory: pytest.TempPathFactory
) -> None:
    token = one_tls_server.add_user("carol")
    other = make_tls_files(tmp_path_factory.mktemp("other-ca"))
    result = run_updl(one_tls_server, token, "--ca-bundle", str(other.ca), "ls")
    assert result.returncode == 6
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"check that {other.ca} holds the CA that signed the server's certificate" in result.stderr


def test_a_missing_ca_bundle_is_a_usage_error(one_tls_server: LiveServer, run_updl, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pem"
    result = run_updl(one_tls_server, "unused", "ls", env={"UPDL_CA_BUNDLE": str(missing)})
    assert result.returncode == 2
    assert result.stderr == (f"updl: error: CA bundle {missing} (from environment (UPDL_CA_BUNDLE)) does not exist\n")


def test_environment_config_file_and_requests_variable_also_name_the_ca(
    one_tls_server: LiveServer, tls_files: TlsFiles, run_updl, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    token = one_tls_server.add_user("dave")
    source = make_file("small.bin", 10_000)
    config = tmp_path / "config.toml"
    config.write_text(f'[default]\nca_bundle = "{tls_files.ca}"\n')
    ways = {
        "env": {"UPDL_CA_BUNDLE": str(tls_files.ca)},
        "config": {"UPDL_CONFIG": str(config)},
        "requests": {"REQUESTS_CA_BUNDLE": str(tls_files.ca)},
    }
    for way, env in ways.items():
        put = run_updl(one_tls_server, token, "put", str(source), "--name", f"{way}.bin", env=env)
        assert put.returncode == 0, (way, put.stderr)
        assert put.stderr.count("warning") == 0, put.stderr  # ca_bundle is a known config key
    listed = run_updl(one_tls_server, token, "--json", "ls", env=ways["env"])
    assert sorted(json.loads(line)["name"] for line in listed.stdout.splitlines()) == [
        "config.bin",
        "env.bin",
        "requests.bin",
    ]


def test_resumable_upload_over_https(
    one_tls_server: LiveServer, tls_files: TlsFiles, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    source = make_file("big.bin", 3 * MIB + 5)
    settings = replace(
        load_settings(one_tls_server.url, one_tls_server.add_user("erin"), ca_bundle=str(tls_files.ca)),
        resumable_threshold=0,
        resumable_chunk_size=MIB,
    )
    sent: list[str] = []

    def recording_session() -> requests.Session:
        session = build_session()
        session.hooks["response"].append(lambda response, **_: sent.append(response.request.method))
        return session

    with updl.Client(settings=settings, session_factory=recording_session) as client:
        info = client.upload(source, "big.bin", retries=0)
        assert info.md5 == md5_hex(source)
        assert sent.count("PATCH") == 4  # tus: three 1 MiB chunks and the last 5 bytes
        client.download("big.bin", tmp_path / "back.bin")
    assert md5_hex(tmp_path / "back.bin") == md5_hex(source)
