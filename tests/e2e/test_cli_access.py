"""``updl whoami``, ``updl login`` and ``updl token ...`` against a real server."""

from __future__ import annotations

import itertools
import json
import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

import updl
from tests.support.live_server import LiveServer
from tests.support.tokens import mint, token_id
from updl.cli import Environment, cli
from updl.exitcodes import ExitCode

Run = Callable[..., subprocess.CompletedProcess[str]]
_users = itertools.count(1)


@pytest.fixture
def user(live_server: LiveServer) -> tuple[str, str]:
    """A fresh user's name and full-scope token."""
    name = f"cli{next(_users)}-{os.getpid()}"
    return name, live_server.add_user(name)


def test_whoami_shows_scopes_prefix_expiry_and_usage(
    live_server: LiveServer, user: tuple[str, str], run_updl: Run, tmp_path: Path
) -> None:
    name, full = user
    with updl.Client(live_server.url, full) as client:
        client.upload(_file(tmp_path / "a.bin", 2048), "ci/a.bin")
    scoped = mint(live_server, name, scopes=("read", "write"), prefix="ci/", label="build")
    result = run_updl(live_server, scoped, "whoami")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"user:    {name}",
        f"token:   {token_id(scoped)} (build)",
        "scopes:  read,write",
        "prefix:  ci/",
        "expires: never",
        "usage:   1 file, 2.0 KiB (2048 bytes)",
    ]
    as_json = json.loads(run_updl(live_server, scoped, "whoami", "--json").stdout)
    assert as_json["scopes"] == ["read", "write"] and as_json["usage"]["bytes"] == 2048


def test_a_403_has_its_own_exit_code(
    live_server: LiveServer, user: tuple[str, str], run_updl: Run, tmp_path: Path
) -> None:
    name, _ = user
    reader = mint(live_server, name, scopes=("read",))
    result = run_updl(live_server, reader, "put", str(_file(tmp_path / "f.txt", 10)))
    assert result.returncode == ExitCode.FORBIDDEN
    assert "may not write" in result.stderr
    outside = mint(live_server, name, prefix="ci/")
    listed = run_updl(live_server, outside, "ls")
    assert listed.returncode == ExitCode.FORBIDDEN and "ci/" in listed.stderr


def test_token_create_list_revoke(live_server: LiveServer, user: tuple[str, str], run_updl: Run) -> None:
    _, full = user
    made = run_updl(live_server, full, "token", "create", "--scopes", "read", "--prefix", "out/", "--expires", "1d")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert made.stdout == secret + "\n" and secret.startswith("updl_")
    listed = run_updl(live_server, full, "token", "list")
    assert token_id(secret) in listed.stdout and "out/" in listed.stdout
    assert secret.split("_", 2)[2] not in listed.stdout
    records = [json.loads(line) for line in run_updl(live_server, full, "token", "list", "--json").stdout.splitlines()]
    assert {r["id"] for r in records} == {token_id(full), token_id(secret)}
    # The read token cannot mint a write token: 403, exit 10.
    wider = run_updl(live_server, secret, "token", "create", "--scopes", "read,write")
    assert wider.returncode == ExitCode.FORBIDDEN and wider.stdout == ""
    assert run_updl(live_server, full, "token", "revoke", token_id(secret)).returncode == 0
    rejected = run_updl(live_server, secret, "whoami")
    assert rejected.returncode == ExitCode.AUTHENTICATION and "revoked" in rejected.stderr


def test_login_checks_the_token_and_writes_the_profile(
    live_server: LiveServer, user: tuple[str, str], tmp_path: Path
) -> None:
    name, full = user
    config = tmp_path / "config.toml"
    config.write_text('# my settings\n[other]\nurl = "http://elsewhere:1"  # kept\n')
    config.chmod(0o644)
    env = {"UPDL_CONFIG": str(config)}
    runner = CliRunner()
    bad = runner.invoke(
        cli, ["login", "--url", live_server.url, "--token", "updl_0123456789abcdef_" + "x" * 43], env=env
    )
    assert bad.exit_code == ExitCode.AUTHENTICATION
    assert "[default]" not in config.read_text()  # nothing written for a token the server refuses
    # No --token: asked for, without echo.
    result = runner.invoke(
        cli, ["login", "--url", live_server.url, "--profile", "work"], input=full + "\n", env=env, obj=Environment()
    )
    assert result.exit_code == 0, result.output
    text = config.read_text()
    assert text.startswith('# my settings\n[other]\nurl = "http://elsewhere:1"  # kept\n')
    assert f'[work]\nurl = "{live_server.url}"\ntoken = "{full}"\n' in text
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert f"as {name}" in result.stderr and full not in result.stderr
    # The profile works on its own.
    me = runner.invoke(cli, ["--profile", "work", "whoami", "--json"], env=env)
    assert me.exit_code == 0, me.output
    assert json.loads(me.stdout)["user"] == name
    # Logging in again replaces the token and keeps the rest.
    again = mint(live_server, name, scopes=("read",))
    assert runner.invoke(cli, ["login", "--profile", "work", "--token", again], env=env).exit_code == 0
    assert f'token = "{again}"' in config.read_text() and full not in config.read_text()
    assert "# kept" in config.read_text()


def _file(path: Path, size: int) -> Path:
    path.write_bytes(b"a" * size)
    return path
