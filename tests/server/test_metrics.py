"""``GET /metrics``: what a put, a refused put and a delete count, who may read it, several workers."""

from __future__ import annotations

import base64
import hashlib
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.support.api import Api, md5_hex
from tests.support.live_server import LiveServer, clean_env, console_script
from tests.support.observe import METRICS_TOKEN, scrape, value
from tests.support.tus import TUS, created
from tests.support.waiting import wait_for

Factory = Callable[..., LiveServer]
PUT = {"method": "PUT", "route": "/files/{name}"}


@pytest.fixture
def observed(server_factory: Factory) -> tuple[LiveServer, Api]:
    """A server with metrics on, and one user of it."""
    server = server_factory("--metrics-token", METRICS_TOKEN)
    return server, Api(server.url, server.add_user("watched"))


def content_md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def test_a_put_a_409_and_a_delete_are_counted(observed: tuple[LiveServer, Api]) -> None:
    server, api = observed
    data = b"counted bytes\n" * 100
    assert api.put("a/b.bin", data, **{"Content-MD5": content_md5(data)}).status_code == 200
    assert api.put("a/c.bin", data, **{"Content-MD5": content_md5(b"other")}).status_code == 409
    assert api.request("DELETE", "/files/a/b.bin").status_code == 204
    samples = scrape(server.url)
    assert value(samples, "updl_http_requests_total", **PUT, status="200") == 1
    assert value(samples, "updl_http_requests_total", **PUT, status="409") == 1
    assert value(samples, "updl_http_requests_total", method="DELETE", route="/files/{name}", status="204") == 1
    assert value(samples, "updl_http_request_duration_seconds_count", **PUT) == 2
    assert value(samples, "updl_http_received_bytes_total", route="/files/{name}") == 2 * len(data)
    assert value(samples, "updl_http_sent_bytes_total", route="/files/{name}") > 0
    assert value(samples, "updl_uploads_verified_total") == 1
    assert value(samples, "updl_uploads_verified_bytes_total") == len(data)
    assert value(samples, "updl_uploads_refused_total", reason="md5_mismatch") == 1
    assert value(samples, "updl_transfers_in_flight", direction="upload") == 0


def test_refusals_by_reason(server_factory: Factory) -> None:
    server = server_factory("--metrics-token", METRICS_TOKEN, "--max-size", "1000")
    api = Api(server.url, server.add_user("refused"))
    assert api.put("big", b"x" * 2000).status_code == 413
    api.upload("kept", b"v1")
    assert api.put("kept", b"v2", **{"If-None-Match": "*"}).status_code == 412
    # a tus request without Tus-Resumable is refused for its protocol, not for the file
    assert api.request("POST", "/tus/", headers={"Upload-Length": "1"}).status_code == 412
    samples = scrape(server.url)
    assert value(samples, "updl_uploads_refused_total", reason="too_large") == 1
    assert value(samples, "updl_uploads_refused_total", reason="precondition_failed") == 1
    assert value(samples, "updl_uploads_verified_total") == 1


def test_tus_uploads_open_and_completed(observed: tuple[LiveServer, Api]) -> None:
    server, api = observed
    data = b"resumable" * 50
    upload = created(api, len(data), "tus.bin", md5=md5_hex(data))
    assert value(scrape(server.url), "updl_tus_uploads_open") == 1
    headers = {**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
    assert api.request("PATCH", upload, data=data, headers=headers).status_code == 204
    samples = scrape(server.url)
    assert value(samples, "updl_tus_uploads_open") == 0
    assert value(samples, "updl_uploads_verified_total") == 1
    assert value(samples, "updl_http_requests_total", method="PATCH", route="/tus/{upload_id}", status="204") == 1


def test_paths_and_methods_a_stranger_chooses_are_not_labels(observed: tuple[LiveServer, Api]) -> None:
    server, api = observed
    assert api.request("GET", "/no/such/route/x7q").status_code == 404
    assert requests.request("PROPFIND", f"{server.url}/files/pot9z", timeout=30).status_code == 405
    text = requests.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=30).text
    assert "x7q" not in text and "PROPFIND" not in text and "pot9z" not in text
    samples = scrape(server.url)
    assert value(samples, "updl_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert value(samples, "updl_http_requests_total", method="other", route="/files/{name}", status="405") == 1


def test_metrics_need_their_own_token(observed: tuple[LiveServer, Api]) -> None:
    server, api = observed
    for headers in ({}, {"Authorization": f"Bearer {api.token}"}, {"Authorization": f"Bearer {METRICS_TOKEN}x"}):
        response = requests.get(f"{server.url}/metrics", headers=headers, timeout=30)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "metrics-token" in response.json()["error"]
        assert "updl_" not in response.text.replace("updl_server", "")


def test_metrics_are_off_by_default(live_server: LiveServer) -> None:
    response = requests.get(f"{live_server.url}/metrics", headers={"Authorization": "Bearer anything"}, timeout=30)
    assert response.status_code == 404
    assert "--metrics-token" in response.json()["error"]


def test_a_short_metrics_token_is_refused_at_start(tmp_path: Path) -> None:
    result = subprocess.run(
        [console_script("updl-server"), "run", "--port", "0", "--data-dir", str(tmp_path), "--metrics-token", "short"],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )
    assert result.returncode == 2
    assert "--metrics-token must be at least 16 characters" in result.stderr
    assert "listening" not in result.stderr


def test_workers_count_into_one_place(tmp_path: Path) -> None:
    """``--workers 2``: each worker counts into the metrics directory (emptied at start); a scrape
    answered by either sums them all."""
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"\0" * 16)  # a crashed run's leftover
    server = LiveServer(
        data_dir=tmp_path / "data",
        args=("--workers", "2", "--metrics-token", METRICS_TOKEN, "--metrics-dir", str(metrics_dir)),
    )
    server.start()
    try:
        token = server.add_user("workers")
        wait_for(lambda: len(_pids(metrics_dir)) == 2, "both workers to open their metrics files")
        assert "999999" not in _pids(metrics_dir)
        uploads = 12
        for i in range(uploads):
            # a new connection each time, so the kernel spreads them over the workers
            api = Api(server.url, token)
            api.upload(f"f{i}", b"%d" % i)
            api.session.close()
        for _ in range(4):  # whichever worker answers, the sums are whole
            samples = scrape(server.url)
            assert value(samples, "updl_uploads_verified_total") == uploads
            assert value(samples, "updl_http_requests_total", **PUT, status="200") == uploads
    finally:
        server.stop()


def _pids(metrics_dir: Path) -> set[str]:
    return {p.stem.rsplit("_", 1)[1] for p in metrics_dir.glob("counter_*.db")}


def test_no_metrics_dir_is_left_behind(tmp_path: Path) -> None:
    """Without --metrics-dir the workers meet in a temporary directory, removed when the server stops."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    server = LiveServer(
        data_dir=tmp_path / "data",
        args=("--workers", "2", "--metrics-token", METRICS_TOKEN),
        env={"TMPDIR": str(scratch)},
    )
    server.start()
    try:
        made = list(scratch.glob("updl-metrics-*"))
        assert len(made) == 1
        assert value(scrape(server.url), "updl_uploads_verified_total") == 0
    finally:
        server.stop()
    assert not made[0].exists()
