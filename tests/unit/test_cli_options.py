"""The CLI's global options, wherever they are written, and its pointers for commands it does not have."""

from __future__ import annotations

import json

import pytest
import responses
from click.testing import CliRunner, Result

from tests.support.scripted import TOKEN, URL, file_info
from updl.cli import Environment, cli

PAGE = {"files": [file_info("a.bin", b"aa")], "next_cursor": None}


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), obj=Environment(sleep=lambda s: None))


@pytest.mark.parametrize(
    "args",
    [
        ("ls", "--json", "--url", URL, "--token", TOKEN),
        ("--json", "ls", "--url", URL, "--token", TOKEN),
        ("--url", URL, "ls", "--token", TOKEN, "--json"),
    ],
)
def test_global_options_before_or_after_the_command(server: responses.RequestsMock, args: tuple[str, ...]) -> None:
    server.get(URL + "/files", json=PAGE)
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["name"] for line in result.stdout.splitlines()] == ["a.bin"]
    assert server.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_option_after_the_command_overrides_the_one_before(server: responses.RequestsMock) -> None:
    server.get(URL + "/files", json=PAGE)
    result = invoke("--url", "http://elsewhere.test", "--token", "old", "ls", "--url", URL, "--token", TOKEN)
    assert result.exit_code == 0, result.output
    assert server.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_quiet_and_debug_after_the_command(server: responses.RequestsMock, tmp_path) -> None:
    source = tmp_path / "f.bin"
    source.write_bytes(b"ff")
    server.post(URL + "/upload", json=file_info("f.bin", b"ff"))
    quiet = invoke("put", str(source), "-q", "--url", URL, "--token", TOKEN)
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr == "" and quiet.stdout == ""
    debug = invoke("put", str(tmp_path / "missing"), "--debug")
    assert debug.exit_code == 4 and "Traceback" in debug.stderr


def test_version_stays_a_group_option() -> None:
    assert invoke("--version").exit_code == 0
    assert invoke("ls", "--version").exit_code == 2


@pytest.mark.parametrize(("typed", "meant"), [("upload", "put"), ("download", "get"), ("delete", "rm"), ("list", "ls")])
def test_other_tools_command_names_point_to_updl_s(typed: str, meant: str) -> None:
    result = invoke(typed, "x")
    assert result.exit_code == 2
    assert f"no such command '{typed}'; did you mean 'updl {meant}'?" in result.stderr
