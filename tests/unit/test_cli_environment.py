"""The CLI's streams come from its ``Environment``: tests swap them instead of patching ``sys``."""

from __future__ import annotations

import io
import json

import responses
from click.testing import CliRunner

from tests.support.scripted import TOKEN, URL, download_headers, file_info
from updl.cli import Environment, cli

DATA = b"piped bytes " * 1000


class Terminal(io.TextIOWrapper):
    """A text stream that says it is a terminal, with the bytes it received kept."""

    def __init__(self) -> None:
        super().__init__(io.BytesIO(), encoding="utf-8", write_through=True)

    def isatty(self) -> bool:
        return True

    def text(self) -> str:
        self.flush()
        return self.buffer.getvalue().decode()  # type: ignore[attr-defined]


def run(env: Environment, *args: str) -> int:
    result = CliRunner().invoke(cli, ["--url", URL, "--token", TOKEN, *args], obj=env)
    return result.exit_code


def test_put_reads_the_environments_stdin_and_writes_its_stdout(server: responses.RequestsMock) -> None:
    server.post(URL + "/upload", json=file_info("piped.bin", DATA))
    stdin = io.TextIOWrapper(io.BytesIO(DATA))
    stdout, stderr = io.StringIO(), io.StringIO()
    env = Environment(sleep=lambda s: None, stdin=stdin, stdout=stdout, stderr=stderr)
    assert run(env, "--json", "put", "-", "--name", "piped.bin") == 0, stderr.getvalue()
    assert json.loads(stdout.getvalue().splitlines()[0])["name"] == "piped.bin"
    assert len(server.calls) == 1


def test_get_to_stdout_writes_the_environments_stdout(server: responses.RequestsMock) -> None:
    server.get(URL + "/files/f.bin", body=DATA, headers=download_headers(DATA))
    stdout = io.TextIOWrapper(io.BytesIO())
    env = Environment(sleep=lambda s: None, stdout=stdout, stderr=io.StringIO())
    assert run(env, "get", "f.bin", "-o", "-") == 0
    stdout.flush()
    assert stdout.buffer.getvalue() == DATA


def test_errors_go_to_the_environments_stderr(server: responses.RequestsMock) -> None:
    server.get(URL + "/info/missing", status=404, json={"error": "no such file", "name": "missing"})
    stdout, stderr = io.StringIO(), io.StringIO()
    assert run(Environment(stdout=stdout, stderr=stderr), "info", "missing") == 4
    assert stderr.getvalue().startswith("updl: error: ") and stdout.getvalue() == ""


def test_a_terminal_stdout_gets_a_table_sized_to_the_terminal(server: responses.RequestsMock) -> None:
    server.get(URL + "/files", json={"files": [file_info("a.bin", b"a")], "next_cursor": None})
    terminal, stderr = Terminal(), io.StringIO()
    assert run(Environment(stdout=terminal, stderr=stderr), "ls") == 0, stderr.getvalue()
    assert "a.bin" in terminal.text()
