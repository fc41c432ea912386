"""The audit log: one JSON line per state change, who did it and from where, never a secret."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.support.api import Api, md5_hex
from tests.support.live_server import LiveServer, clean_env, console_script
from tests.support.observe import audit_lines, events
from tests.support.tus import TUS, created
from tests.support.waiting import wait_for
from updl_server import audit

Factory = Callable[..., LiveServer]


def content_md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def token_id(token: str) -> str:
    return token.split("_")[1]


@pytest.fixture
def audited(server_factory: Factory, tmp_path: Path) -> tuple[LiveServer, Api, Path]:
    """A server writing its audit log to a file, and one user of it."""
    log = tmp_path / "audit.log"
    server = server_factory("--audit-log", str(log))
    return server, Api(server.url, server.add_user("audited")), log


def test_a_put_a_409_and_a_delete_are_audited(audited: tuple[LiveServer, Api, Path]) -> None:
    _, api, log = audited
    data = b"audited bytes\n"
    assert api.put("dir/a.txt", data, **{"Content-MD5": content_md5(data)}).status_code == 200
    assert api.put("dir/a.txt", data + b"!", **{"Content-MD5": content_md5(data + b"!")}).status_code == 200
    assert api.put("dir/b.txt", data, **{"Content-MD5": content_md5(b"not it")}).status_code == 409
    assert api.request("DELETE", "/files/dir/a.txt").status_code == 204
    lines = audit_lines(log)
    assert [line["event"] for line in lines] == [
        "upload.committed",
        "upload.replaced",
        "upload.refused",
        "file.deleted",
    ]
    for line in lines:
        assert line["user_id"] >= 1
        assert line["token_id"] == token_id(api.token)
        assert line["client"] == "127.0.0.1"
        assert line["time"].endswith("Z")
    committed, replaced, refused, deleted = lines
    assert committed["name"] == "dir/a.txt" and committed["size"] == len(data) and committed["md5"] == md5_hex(data)
    assert replaced["md5"] == md5_hex(data + b"!")
    assert refused["reason"] == "md5_mismatch" and refused["status"] == 409 and refused["name"] == "dir/b.txt"
    assert refused["actual"] == md5_hex(data)
    assert deleted["name"] == "dir/a.txt"
    text = log.read_text()
    assert api.token not in text and api.token.split("_", 2)[2] not in text


def test_a_tus_upload_completing_is_audited(audited: tuple[LiveServer, Api, Path]) -> None:
    _, api, log = audited
    data = b"resumable" * 10
    upload = created(api, len(data), "tus.bin", md5=md5_hex(data))
    headers = {**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
    assert api.request("PATCH", upload, data=data, headers=headers).status_code == 204
    [done] = events(log, "tus.completed")
    assert done["upload_id"] == upload.rsplit("/", 1)[1]
    assert done["name"] == "tus.bin" and done["size"] == len(data) and done["md5"] == md5_hex(data)
    assert done["token_id"] == token_id(api.token)
    assert [line["name"] for line in events(log, "upload.committed")] == ["tus.bin"]


def test_share_links_created_used_and_revoked_are_audited(audited: tuple[LiveServer, Api, Path]) -> None:
    """A link's life in the log: created (by the token), each counted download (by the owner), revoked."""
    _, api, log = audited
    api.upload("s.txt", b"shared")
    made = api.request("POST", "/shares", json={"name": "s.txt", "expires_in": 600}).json()
    assert requests.head(made["url"], timeout=30).status_code == 200  # not a download: no line
    assert requests.get(made["url"], timeout=30).content == b"shared"
    assert api.request("DELETE", f"/shares/{made['id']}").status_code == 204
    [created_line], [used], [revoked] = (events(log, e) for e in ("share.created", "share.used", "share.revoked"))
    assert created_line["share_id"] == used["share_id"] == revoked["share_id"] == made["id"]
    assert created_line["token_id"] == revoked["token_id"] == token_id(api.token)
    assert used["name"] == "s.txt" and used["user_id"] == created_line["user_id"] and "token_id" not in used
    secret = made["url"].rsplit(".", 1)[1]
    assert secret not in log.read_text()


def test_reads_and_refused_tokens_write_nothing(audited: tuple[LiveServer, Api, Path]) -> None:
    server, api, log = audited
    api.upload("r.txt", b"read me")
    before = len(audit_lines(log))
    assert api.get("r.txt").status_code == 200
    assert api.request("GET", "/files").status_code == 200
    assert Api(server.url, "updl_0123456789abcdef_" + "x" * 43).request("DELETE", "/files/r.txt").status_code == 401
    assert len(audit_lines(log)) == before


def test_lines_from_several_workers_never_interleave(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    server = LiveServer(data_dir=tmp_path / "data", args=("--workers", "2", "--audit-log", str(log)))
    server.start()
    try:
        token = server.add_user("busy")
        long_name = "n" * 900  # long lines, so that a torn write would show

        def upload(i: int) -> None:
            api = Api(server.url, token)
            for j in range(5):
                api.upload(f"{long_name}/{i}-{j}", b"%d-%d" % (i, j))
            api.session.close()

        threads = [threading.Thread(target=upload, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        server.stop()
    committed = events(log, "upload.committed")  # every line parses
    assert sorted(line["name"].rsplit("/", 1)[1] for line in committed) == sorted(
        f"{i}-{j}" for i in range(4) for j in range(5)
    )


def test_admin_commands_audit_users_and_tokens(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    data_dir = tmp_path / "data"
    outputs = []
    for command in ("add-user", "new-token"):
        result = subprocess.run(
            [console_script("updl-server"), command, "ops", "--data-dir", str(data_dir)],
            capture_output=True,
            text=True,
            env=clean_env(UPDL_SERVER_AUDIT_LOG=str(log)),
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout.strip())
    lines = audit_lines(log)
    assert [line["event"] for line in lines] == ["user.created", "token.created", "token.created"]
    assert lines[0]["user"] == "ops" and lines[0]["via"] == "updl-server add-user"
    assert [line["token_id"] for line in lines[1:]] == [token_id(t) for t in outputs]
    assert lines[2]["via"] == "updl-server new-token"
    text = log.read_text()
    for token in outputs:
        assert token not in text and token.split("_", 2)[2] not in text


def test_stderr_audit_log(server_factory: Factory) -> None:
    server = server_factory("--audit-log", "-")
    Api(server.url, server.add_user("to-stderr")).upload("e.txt", b"e")
    wait_for(
        lambda: any('"event":"upload.committed"' in line and '"name":"e.txt"' in line for line in server.log),
        "the audit line on the server's standard error",
    )


def test_an_unwritable_audit_log_stops_the_start(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            console_script("updl-server"),
            "run",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path / "data"),
            "--audit-log",
            str(tmp_path / "missing" / "audit.log"),
        ],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )
    assert result.returncode == 2
    assert "cannot open --audit-log" in result.stderr and "listening" not in result.stderr


@pytest.mark.parametrize("field", ["token", "secret", "secret_hash", "authorization", "password"])
def test_record_refuses_secret_fields(field: str) -> None:
    with pytest.raises(ValueError, match="secrets"):
        audit.record("token.created", **{field: "x"})
