"""``updl share``, ``updl shares`` and ``updl unshare`` against a real server; the URL fetched by curl and wget."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.interop import require_tool, run_tool
from tests.support.live_server import LiveServer
from tests.support.tokens import mint
from updl.exitcodes import ExitCode

Run = Callable[..., subprocess.CompletedProcess[str]]
_users = itertools.count(1)


@pytest.fixture
def user(live_server: LiveServer, run_updl: Run, tmp_path: Path) -> tuple[str, str]:
    """A fresh user's name and full-scope token, owning ``docs/report.txt``."""
    name = f"share{next(_users)}-{os.getpid()}"
    token = live_server.add_user(name)
    source = tmp_path / "report.txt"
    source.write_bytes(b"quarterly report\n" * 1000)
    assert run_updl(live_server, token, "put", str(source), "--name", "docs/report.txt").returncode == 0
    return name, token


def test_a_shared_url_downloads_with_curl_and_wget_without_a_token(
    live_server: LiveServer, user: tuple[str, str], run_updl: Run, tmp_path: Path
) -> None:
    _, token = user
    made = run_updl(live_server, token, "share", "docs/report.txt", "--expires", "1h", "--max-downloads", "3")
    assert made.returncode == 0, made.stderr
    url = made.stdout.strip()
    assert url.startswith(live_server.url + "/s/") and "\n" not in url
    expected = b"quarterly report\n" * 1000
    by_curl, by_wget = tmp_path / "curl.txt", tmp_path / "wget.txt"
    assert run_tool(require_tool("curl"), "-fsS", "-o", str(by_curl), url).returncode == 0
    assert run_tool(require_tool("wget"), "-q", "-O", str(by_wget), url).returncode == 0
    assert by_curl.read_bytes() == expected and by_wget.read_bytes() == expected
    listed = [json.loads(line) for line in run_updl(live_server, token, "shares", "--json").stdout.splitlines()]
    assert [(link["name"], link["downloads"], link["max_downloads"], link["url"]) for link in listed] == [
        ("docs/report.txt", 2, 3, None)
    ]
    table = run_updl(live_server, token, "shares").stdout
    assert listed[0]["id"] in table and "2/3" in table


def test_unshare_makes_the_url_answer_410(
    live_server: LiveServer, user: tuple[str, str], run_updl: Run, tmp_path: Path
) -> None:
    _, token = user
    made = json.loads(run_updl(live_server, token, "share", "docs/report.txt", "--expires", "1d", "--json").stdout)
    revoked = run_updl(live_server, token, "unshare", made["id"])
    assert revoked.returncode == 0 and made["id"] in revoked.stdout
    gone = run_tool(require_tool("curl"), "-sS", "-o", os.devnull, "-w", "%{http_code}", made["url"])
    assert gone.stdout == "410"
    again = run_updl(live_server, token, "unshare", made["id"])
    assert again.returncode == ExitCode.NOT_FOUND and len(again.stderr.strip().splitlines()) == 1


def test_scopes_decide_who_may_share(live_server: LiveServer, user: tuple[str, str], run_updl: Run) -> None:
    """A read-only token may share its names; a token whose prefix excludes the name may not (exit 10)."""
    name, _ = user
    reader = mint(live_server, name, scopes=("read",))
    assert run_updl(live_server, reader, "share", "docs/report.txt", "--expires", "10m").returncode == 0
    elsewhere = mint(live_server, name, prefix="ci/")
    refused = run_updl(live_server, elsewhere, "share", "docs/report.txt", "--expires", "10m")
    assert refused.returncode == ExitCode.FORBIDDEN, refused.stderr
    assert refused.stdout == ""


def test_bad_durations_and_missing_files_are_clear(
    live_server: LiveServer, user: tuple[str, str], run_updl: Run
) -> None:
    _, token = user
    too_long = run_updl(live_server, token, "share", "docs/report.txt", "--expires", "31d")
    assert too_long.returncode != 0 and "30 days" in too_long.stderr
    missing = run_updl(live_server, token, "share", "docs/none.txt", "--expires", "1h")
    assert missing.returncode == ExitCode.NOT_FOUND and missing.stdout == ""
