"""The whole workflow through the Python SDK against a real server."""

from __future__ import annotations

from pathlib import Path

import pytest

import updl
from tests.support.files import md5_hex
from tests.support.live_server import LiveServer


def test_put_ls_get_round_trip(live_server: LiveServer, token: str, make_file, tmp_path: Path) -> None:
    source = make_file("report.bin", 3 * 1024 * 1024 + 17)
    events: list[updl.ProgressEvent] = []
    with updl.Client(live_server.url, token) as client:
        stored = client.upload(source, "reports/2026/report.bin", on_progress=events.append)
        listed = client.list(prefix="reports/")
        dest = tmp_path / "out" / "report.bin"
        dest.parent.mkdir()
        fetched = client.download("reports/2026/report.bin", dest)

    assert stored.name == "reports/2026/report.bin"
    assert stored.size == source.stat().st_size
    assert stored.md5 == md5_hex(source)
    assert [f.name for f in listed] == ["reports/2026/report.bin"]
    assert listed[0].md5 == stored.md5
    assert dest.read_bytes() == source.read_bytes()
    assert fetched.md5 == stored.md5
    assert events[-1].transferred == events[-1].total == source.stat().st_size
    assert [e.transferred for e in events] == sorted(e.transferred for e in events)


def test_default_name_is_the_file_name(live_server: LiveServer, token: str, make_file) -> None:
    source = make_file("plain-name.txt", 1000)
    with updl.Client(live_server.url, token) as client:
        assert client.upload(source).name == "plain-name.txt"
        assert client.info("plain-name.txt").size == 1000


def test_upload_from_file_object_and_empty_file(live_server: LiveServer, token: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with updl.Client(live_server.url, token) as client:
        with open(empty, "rb") as fh:
            info = client.upload(fh, "empty")
        assert (info.size, info.md5) == (0, "d41d8cd98f00b204e9800998ecf8427e")
        client.download("empty", tmp_path / "empty.out")
    assert (tmp_path / "empty.out").read_bytes() == b""


def test_replace_then_delete(live_server: LiveServer, token: str, make_file, tmp_path: Path) -> None:
    first, second = make_file("a", 5000), make_file("b", 7000)
    with updl.Client(live_server.url, token) as client:
        client.upload(first, "same")
        replaced = client.upload(second, "same")
        assert client.info("same").md5 == replaced.md5 == md5_hex(second)
        client.delete("same")
        with pytest.raises(updl.NotFoundError):
            client.info("same")
        with pytest.raises(updl.NotFoundError):
            client.download("same", tmp_path / "gone")
    assert not (tmp_path / "gone").exists()


def test_wrong_token_is_an_authentication_error(live_server: LiveServer, make_file) -> None:
    with updl.Client(live_server.url, "updl_0000000000000000_not-a-real-secret") as client:
        with pytest.raises(updl.AuthenticationError):
            client.upload(make_file())
        with pytest.raises(updl.AuthenticationError):
            client.list()


def test_iter_entries_rolls_names_up_into_folders(live_server: LiveServer, token: str, tmp_path: Path) -> None:
    """``iter_entries(prefix, "/")``: each folder once, in name order with the files beside them."""
    source = tmp_path / "one"
    source.write_bytes(b"1")
    names = [f"tree/a/{i}" for i in range(5)] + ["tree/b/c/d", "tree/top", "tree-x"]
    with updl.Client(live_server.url, token) as client:
        for name in names:
            client.upload(source, name)
        entries = list(client.iter_entries("tree/", "/"))
        top = client.info("tree/top")
        flat = [e.name for e in client.iter_entries("tree/")]
    assert entries == [updl.Prefix("tree/a/"), updl.Prefix("tree/b/"), top]
    assert flat == sorted(n for n in names if n.startswith("tree/"))
