"""curl against the server over HTTPS with a certificate from the test's own CA: ``--cacert``
is all a curl user needs, as README.md's TLS section says, and without it curl refuses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.interop import MIB, md5_hex, require_tool, run_tool, same_bytes
from tests.support.live_server import LiveServer
from tests.support.tls import make_tls_files

CURL_SSL_CACERT = 60  # curl's exit code: "peer certificate cannot be authenticated with known CA certificates"


@pytest.fixture
def https_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    files = make_tls_files(tmp_path_factory.mktemp("tls"))
    server = LiveServer(data_dir=tmp_path_factory.mktemp("tls-data"), args=files.server_args(), ca_bundle=str(files.ca))
    server.start()
    yield server
    server.stop()


def test_curl_uploads_and_downloads_with_cacert(https_server: LiveServer, pattern_file, tmp_path: Path) -> None:
    curl = require_tool("curl")
    assert https_server.ca_bundle is not None
    token = https_server.add_user("curler")
    auth = ("-H", f"Authorization: Bearer {token}")
    source = pattern_file("app.tar.gz", MIB + 3)
    upload = run_tool(
        curl, "-sS", "--fail-with-body", "--cacert", https_server.ca_bundle, *auth,
        "-F", f"file=@{source}", "-F", f"md5={md5_hex(source)}", f"{https_server.url}/upload",
    )  # fmt: skip
    assert upload.returncode == 0, upload.stdout + upload.stderr
    assert json.loads(upload.stdout)["md5"] == md5_hex(source)

    dest = tmp_path / "back.tar.gz"
    download = run_tool(
        curl, "-sS", "--fail", "--cacert", https_server.ca_bundle, *auth,
        "-o", str(dest), f"{https_server.url}/files/app.tar.gz",
    )  # fmt: skip
    assert download.returncode == 0, download.stderr
    assert same_bytes(dest, source)

    untrusted = run_tool(curl, "-sS", *auth, f"{https_server.url}/files/app.tar.gz")
    assert untrusted.returncode == CURL_SSL_CACERT, untrusted.stderr
