"""Create-only (``no_clobber`` / ``--no-clobber``) and conditional (``if_match`` / ``--if-match``)
uploads through the SDK and the installed ``updl`` script, against a real server."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import updl
from tests.support.files import md5_hex
from tests.support.live_server import LiveServer
from tests.support.racing import all_at_once
from tests.support.relay import Relay
from updl.exitcodes import ExitCode

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.mark.parametrize("threshold", [None, 0], ids=["multipart", "resumable-size"])
def test_no_clobber_stores_a_new_name_and_refuses_an_existing_one(
    live_server: LiveServer, token: str, make_file, threshold: int | None
) -> None:
    """Refused without a retry, and the stored file is untouched. A file big enough for tus
    (threshold 0) is refused too: the tus route takes no conditions, so it must not be used."""
    first, second = make_file("first", 70_000), make_file("second", 80_000)
    retries: list[updl.RetryEvent] = []
    with updl.Client(live_server.url, token) as client:
        stored = client.upload(first, "docs/a.bin", no_clobber=True, resumable_threshold=threshold)
        with pytest.raises(updl.PreconditionFailedError) as refused:
            client.upload(second, "docs/a.bin", no_clobber=True, resumable_threshold=threshold, on_retry=retries.append)
        after = client.info("docs/a.bin")
    assert stored.md5 == md5_hex(first)
    assert (refused.value.status, refused.value.name, refused.value.current_md5) == (412, "docs/a.bin", stored.md5)
    assert str(refused.value).startswith(f"docs/a.bin already exists on the server (md5 {stored.md5})")
    assert (refused.value.attempts, retries) == (1, [])
    assert (after.md5, after.size) == (stored.md5, 70_000)


def test_no_clobber_retry_after_a_lost_answer_is_not_a_refusal(live_server: LiveServer, token: str, make_file) -> None:
    """The first attempt is stored but its answer is lost; the retry meets the file that attempt
    created (412 with the same MD5): that is the upload's own success, not someone else's file."""
    source = make_file("mine", 50_000)
    relay = Relay(int(live_server.url.rsplit(":", 1)[1]), cut_down_after=0)
    retries: list[updl.RetryEvent] = []
    try:
        with updl.Client(relay.url, token) as client:
            stored = client.upload(source, "once.bin", no_clobber=True, on_retry=retries.append)
    finally:
        relay.close()
    assert len(retries) == 1
    assert (stored.name, stored.md5, stored.size) == ("once.bin", md5_hex(source), 50_000)
    # A later, different upload is still refused.
    with updl.Client(live_server.url, token) as client, pytest.raises(updl.PreconditionFailedError):
        client.upload(make_file("other", 10), "once.bin", no_clobber=True)


def test_if_match_replaces_only_the_named_version(live_server: LiveServer, token: str, make_file) -> None:
    v1, v2, v3 = make_file("v1", 1000), make_file("v2", 2000), make_file("v3", 3000)
    with updl.Client(live_server.url, token) as client:
        with pytest.raises(updl.PreconditionFailedError) as missing:
            client.upload(v1, "doc", if_match=md5_hex(v1))
        assert missing.value.current_md5 is None
        assert str(missing.value).startswith("doc does not exist on the server")
        client.upload(v1, "doc")
        with pytest.raises(updl.PreconditionFailedError) as stale:
            client.upload(v2, "doc", if_match=md5_hex(v3))
        assert stale.value.current_md5 == md5_hex(v1)
        assert client.info("doc").md5 == md5_hex(v1)
        replaced = client.upload(v2, "doc", if_match=md5_hex(v1).upper())
        assert replaced.md5 == client.info("doc").md5 == md5_hex(v2)
        with pytest.raises(ValueError, match="32 hex digits"):
            client.upload(v3, "doc", if_match="not-an-md5")
        assert client.info("doc").md5 == md5_hex(v2)


def test_racing_no_clobber_uploads_store_exactly_one(live_server: LiveServer, token: str, make_file) -> None:
    """The server's commit-time check decides a race the early check cannot see."""
    sources = [make_file(f"racer{i}", 400_000 + i) for i in range(2)]
    clients = [updl.Client(live_server.url, token) for _ in sources]

    def attempt(client: updl.Client, source: Path) -> Callable[[], object]:
        def run() -> object:
            try:
                return client.upload(source, "race.bin", no_clobber=True)
            except updl.PreconditionFailedError as exc:
                return exc

        return run

    try:
        results = all_at_once([attempt(c, s) for c, s in zip(clients, sources, strict=True)])
    finally:
        for client in clients:
            client.close()
    winners = [r for r in results if isinstance(r, updl.FileInfo)]
    losers = [r for r in results if isinstance(r, updl.PreconditionFailedError)]
    assert (len(winners), len(losers)) == (1, 1)
    assert losers[0].current_md5 == winners[0].md5
    with updl.Client(live_server.url, token) as client:
        assert client.info("race.bin").md5 == winners[0].md5


def test_cli_no_clobber_exit_code_and_batch(live_server: LiveServer, token: str, run_updl: Run, make_file) -> None:
    """One refused file: exit 9 and a one-line message. In a batch the refusal is that file's
    failed outcome; the others are uploaded (exit 8, partial)."""
    old, new = make_file("old.txt", 100), make_file("new.txt", 200)
    assert run_updl(live_server, token, "put", str(old), "--prefix", "d").returncode == 0
    replacement = make_file("replacement", 300)

    single = run_updl(live_server, token, "put", str(replacement), "--name", "d/old.txt", "--no-clobber")
    assert single.returncode == ExitCode.PRECONDITION_FAILED and int(ExitCode.PRECONDITION_FAILED) == 9
    assert single.stderr.strip().splitlines()[-1] == (
        f"updl: error: d/old.txt already exists on the server (md5 {md5_hex(old)}); "
        "nothing was stored (precondition failed)"
    )

    batch = run_updl(live_server, token, "--json", "put", str(old), str(new), "--prefix", "d", "--no-clobber")
    assert batch.returncode == ExitCode.PARTIAL_FAILURE
    records = [json.loads(line) for line in batch.stdout.splitlines()]
    by_name = {r["name"]: r for r in records if "name" in r}
    assert by_name["d/new.txt"]["status"] == "uploaded"
    assert by_name["d/old.txt"]["status"] == "failed"
    assert "already exists" in by_name["d/old.txt"]["error"]
    assert records[-1]["summary"]["uploaded"] == 1
    assert records[-1]["summary"]["failed"] == 1
    ls = run_updl(live_server, token, "--json", "ls", "d/")
    assert {r["name"]: r["md5"] for r in map(json.loads, ls.stdout.splitlines()) if "name" in r} == {
        "d/old.txt": md5_hex(old),
        "d/new.txt": md5_hex(new),
    }

    everything_exists = run_updl(live_server, token, "put", str(old), str(new), "--prefix", "d", "--no-clobber")
    assert everything_exists.returncode == ExitCode.PRECONDITION_FAILED


def test_cli_if_match(live_server: LiveServer, token: str, run_updl: Run, make_file) -> None:
    v1, v2 = make_file("v1", 100), make_file("v2", 200)
    assert run_updl(live_server, token, "put", str(v1), "--name", "cfg").returncode == 0
    stale = run_updl(live_server, token, "put", str(v2), "--name", "cfg", "--if-match", md5_hex(v2))
    assert stale.returncode == ExitCode.PRECONDITION_FAILED
    assert f"cfg on the server is another version (md5 {md5_hex(v1)})" in stale.stderr
    ok = run_updl(live_server, token, "put", str(v2), "--name", "cfg", "--if-match", md5_hex(v1))
    assert ok.returncode == 0, ok.stderr
    with updl.Client(live_server.url, token) as client:
        assert client.info("cfg").md5 == md5_hex(v2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--if-match", "xyz"], "expected an MD5 of 32 hex digits"),
        (["--if-match", "0" * 32, "--no-clobber"], "exclude each other"),
        (["--if-match", "0" * 32, "-r"], "one FILE only"),
    ],
)
def test_cli_bad_conditions_are_usage_errors(
    live_server: LiveServer, token: str, run_updl: Run, make_file, args: list[str], message: str
) -> None:
    source = make_file("f", 10)
    result = run_updl(live_server, token, "put", str(source), *args)
    assert result.returncode == ExitCode.USAGE
    assert message in result.stderr
    with updl.Client(live_server.url, token) as client:
        assert client.list() == []
