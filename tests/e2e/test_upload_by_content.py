"""Upload by content and SHA-256 from the client: ``updl put``/``sync`` link content the server
holds (no bytes sent, counted by a relay), ``--no-dedup`` sends them, ``--checksum sha256``
has the server verify the file's SHA-256 on every upload path, against a real server."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import updl
from tests.support.live_server import LiveServer
from tests.support.racing import committed_blobs
from tests.support.relay import Relay

Run = Callable[..., subprocess.CompletedProcess[str]]
SIZE = 3 * 1024 * 1024 + 17  # over the 1 MiB below which nothing is offered
SMALL_REQUESTS = 64 * 1024  # what an offer and its headers may take: far less than the file


@pytest.fixture
def server(server_factory: Callable[..., LiveServer]) -> LiveServer:
    """A server of this test's own: its blobs are this test's only."""
    return server_factory()


@pytest.fixture
def token(server: LiveServer) -> str:
    return server.add_user("ci")


@pytest.fixture
def relay(server: LiveServer) -> Iterator[Relay]:
    proxy = Relay(int(server.url.rsplit(":", 1)[1]))
    yield proxy
    proxy.close()


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "dist" / "app.bin"
    path.parent.mkdir()
    path.write_bytes(bytes(range(251)) * (SIZE // 251) + b"tail" * 3)
    return path


def sha256_hex(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_put_of_content_already_stored_links_it_and_sends_no_bytes(
    server: LiveServer, token: str, relay: Relay, artifact: Path, run_updl: Run, tmp_path: Path
) -> None:
    """The CI case: the same artifact under a new prefix. Linked (said on stdout), fetched back
    identical, one blob on the server; ``--no-dedup`` sends the bytes again."""
    first = run_updl(server, token, "put", str(artifact), "--name", "build/1/app.bin")
    assert first.returncode == 0, first.stderr
    relay.reset()
    again = run_updl(relay.url, token, "put", str(artifact), "--name", "build/2/app.bin")
    assert again.returncode == 0, again.stderr
    assert "linked build/2/app.bin (no bytes sent)" in again.stdout
    assert relay.up < SMALL_REQUESTS
    back = tmp_path / "back.bin"
    fetched = run_updl(server, token, "get", "build/2/app.bin", "-o", str(back))
    assert fetched.returncode == 0, fetched.stderr
    assert back.read_bytes() == artifact.read_bytes()
    assert len(committed_blobs(server.data_dir)) == 1
    relay.reset()
    sent = run_updl(relay.url, token, "put", str(artifact), "--name", "build/3/app.bin", "--no-dedup")
    assert sent.returncode == 0, sent.stderr
    assert "linked" not in sent.stdout
    assert relay.up > SIZE
    assert len(committed_blobs(server.data_dir)) == 2


def test_a_first_upload_claims_the_sha256_it_offered(server: LiveServer, token: str, artifact: Path) -> None:
    """No content to link: the file is uploaded (multipart and tus) with the offer's SHA-256 as a
    claim, and the server reports the SHA-256 it computed, equal to the file's."""
    with updl.Client(server.url, token) as client:
        multipart = client.upload(artifact, "multipart.bin", resumable_threshold=1 << 40)
        artifact.write_bytes(artifact.read_bytes()[::-1])  # other content: nothing to link
        resumable = client.upload(artifact, "tus.bin", resumable_threshold=0)
    assert multipart.sha256 is not None and resumable.sha256 == sha256_hex(artifact)
    assert multipart.sha256 != resumable.sha256


def test_a_linked_name_records_its_own_file_mode_and_mtime(
    server: LiveServer, token: str, artifact: Path, tmp_path: Path
) -> None:
    """Two local files with the same bytes, one executable: the link records the second file's
    mode and mtime, not those of the name it shares content with."""
    os.chmod(artifact, 0o755)
    copy = tmp_path / "copy.bin"
    shutil.copyfile(artifact, copy)
    os.chmod(copy, 0o640)
    os.utime(copy, (1_700_000_000, 1_700_000_000))
    with updl.Client(server.url, token) as client:
        client.upload(artifact, "bin/tool")
        linked = client.upload(copy, "data/copy.bin")
        first = client.info("bin/tool")
    assert (first.mode, linked.mode) == (0o755, 0o640)
    assert linked.mtime is not None and linked.mtime.timestamp() == 1_700_000_000
    assert len(committed_blobs(server.data_dir)) == 1


def test_sync_to_a_new_prefix_links_every_file(
    server: LiveServer, token: str, relay: Relay, artifact: Path, run_updl: Run
) -> None:
    """``updl sync`` of a tree already stored under another prefix sends none of its bytes."""
    tree = artifact.parent
    (tree / "second.bin").write_bytes(artifact.read_bytes()[::-1])
    first = run_updl(server, token, "sync", str(tree), "remote:release/1/")
    assert first.returncode == 0, first.stderr
    relay.reset()
    second = run_updl(relay.url, token, "sync", str(tree), "remote:release/2/")
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("(no bytes sent)") == 2, second.stdout
    assert relay.up < 2 * SMALL_REQUESTS
    with updl.Client(server.url, token) as client:
        assert [f.name for f in client.list(prefix="release/2/")] == ["release/2/app.bin", "release/2/second.bin"]


@pytest.mark.parametrize("threshold", ["1T", "0"], ids=["multipart", "tus"])
def test_put_checksum_sha256_has_the_server_verify_it(
    server: LiveServer, token: str, run_updl: Run, tmp_path: Path, threshold: str
) -> None:
    """``--checksum sha256`` on a small file (no offer): the SHA-256 is claimed and verified; ``info
    --json`` shows it; ``get --checksum sha256`` checks it on disk."""
    source = tmp_path / "small.txt"
    source.write_bytes(b"checked twice\n" * 1000)
    put = run_updl(server, token, "put", str(source), "--checksum", "sha256", "--resumable-threshold", threshold)
    assert put.returncode == 0, put.stderr
    info = run_updl(server, token, "--json", "info", "small.txt")
    assert json.loads(info.stdout)["sha256"] == sha256_hex(source)
    back = tmp_path / "back.txt"
    got = run_updl(server, token, "get", "small.txt", "-o", str(back), "--checksum", "sha256")
    assert got.returncode == 0, got.stderr
    assert back.read_bytes() == source.read_bytes()


def test_a_link_whose_answer_is_lost_is_not_refused_by_its_own_no_clobber(
    server: LiveServer, token: str, artifact: Path
) -> None:
    """The offer links ``b.bin`` but the answer is cut; the retry meets ``If-None-Match: *`` and a
    412 for the name it just made. Same size and SHA-256: that is the upload's own success."""
    with updl.Client(server.url, token) as client:
        client.upload(artifact, "a.bin")
    relay = Relay(int(server.url.rsplit(":", 1)[1]), cut_down_after=0)
    retries: list[updl.RetryEvent] = []
    try:
        with updl.Client(relay.url, token, sleep=lambda _s: None) as client:
            linked = client.upload(artifact, "b.bin", no_clobber=True, on_retry=retries.append)
    finally:
        relay.close()
    assert len(retries) == 1
    assert (linked.name, linked.sha256) == ("b.bin", sha256_hex(artifact))
    assert len(committed_blobs(server.data_dir)) == 1
