"""A config file key that would be ignored is reported, never dropped silently."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import responses
from click.testing import CliRunner

from tests.support.scripted import TOKEN, URL
from updl.cli import Environment, cli
from updl.sdk.config import load_settings
from updl.sdk.errors import ConfigWarning


def test_unknown_key_warns_with_file_profile_and_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[ci]\nurl = "http://x:1"\ntokn = "secret"\n')
    with pytest.warns(ConfigWarning) as caught:
        settings = load_settings(profile="ci", environ={}, config_path=path)
    assert [str(w.message) for w in caught] == [
        f"config file {path} [ci]: unknown key 'tokn' ignored; did you mean 'token'?"
    ]
    assert settings.token is None


def test_key_outside_any_profile_warns(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('token = "secret"\n[default]\nurl = "http://x:1"\n')
    with pytest.warns(ConfigWarning, match=r"'token' is outside any \[profile\] table"):
        load_settings(environ={}, config_path=path)


def test_known_keys_do_not_warn(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[default]\nurl = "http://x:1"\ntoken = "t"\nretries = 2\ntimeout = 5\n'
        'resumable_threshold = "1MiB"\nresumable_chunk_size = "1MiB"\n'
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_settings(environ={}, config_path=path)


def test_cli_shows_the_warning_on_stderr(server: responses.RequestsMock, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f'[default]\nurl = "{URL}"\ntokn = "{TOKEN}"\n')
    server.get(URL + "/files", json={"files": [], "next_cursor": None})
    result = CliRunner().invoke(
        cli, ["ls", "--token", TOKEN], env={"UPDL_CONFIG": str(path)}, obj=Environment(sleep=lambda s: None)
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == (
        f"updl: warning: config file {path} [default]: unknown key 'tokn' ignored; did you mean 'token'?"
    )
