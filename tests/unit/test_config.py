"""Settings precedence: flag > environment > config file > default."""

from __future__ import annotations

from pathlib import Path

import pytest

from updl import InvalidSettingsError, load_settings
from updl.sdk.config import DEFAULT_URL, default_config_path

CONFIG = """
[default]
url = "http://file-default:1"
token = "file-token"
retries = 5
timeout = [3, 60]

[ci]
url = "http://file-ci:2"
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    return path


def test_defaults_without_anything() -> None:
    settings = load_settings(environ={})
    assert settings.url == DEFAULT_URL and settings.url_source == "default"
    assert settings.token is None and settings.token_source == "not set"
    assert settings.retries == 3 and settings.profile == "default"


def test_config_file_beats_default(config: Path) -> None:
    settings = load_settings(environ={}, config_path=config)
    assert settings.url == "http://file-default:1"
    assert settings.token == "file-token"
    assert settings.retries == 5 and settings.timeout == (3.0, 60.0)
    assert settings.url_source == f"config file {config} [default]"


def test_environment_beats_config_file(config: Path) -> None:
    env = {"UPDL_URL": "http://env:3", "UPDL_TOKEN": "env-token"}
    settings = load_settings(environ=env, config_path=config)
    assert (settings.url, settings.token) == ("http://env:3", "env-token")
    assert settings.token_source == "environment (UPDL_TOKEN)"


def test_flag_beats_environment(config: Path) -> None:
    env = {"UPDL_URL": "http://env:3", "UPDL_TOKEN": "env-token"}
    settings = load_settings("http://flag:4/", "flag-token", environ=env, config_path=config)
    assert (settings.url, settings.token) == ("http://flag:4", "flag-token")
    assert settings.url_source == settings.token_source == "flag"


def test_profile_from_environment_and_updl_config(config: Path) -> None:
    settings = load_settings(environ={"UPDL_PROFILE": "ci", "UPDL_CONFIG": str(config)})
    assert settings.profile == "ci" and settings.url == "http://file-ci:2"
    assert settings.token is None  # profiles do not inherit from [default]


def test_profile_flag_beats_environment(config: Path) -> None:
    settings = load_settings(profile="default", environ={"UPDL_PROFILE": "ci"}, config_path=config)
    assert settings.url == "http://file-default:1"


def test_missing_named_profile_is_an_error(config: Path) -> None:
    with pytest.raises(InvalidSettingsError, match=r"no profile \[nope\].*profiles: ci, default"):
        load_settings(profile="nope", environ={}, config_path=config)


def test_default_config_path_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "updl").mkdir()
    (tmp_path / "updl" / "config.toml").write_text('[default]\nurl = "http://xdg:5"\n')
    assert default_config_path() == tmp_path / "updl" / "config.toml"
    assert load_settings().url == "http://xdg:5"  # reads os.environ when called


@pytest.mark.parametrize(
    "text, match",
    [
        ("[default\n", "not valid TOML"),
        ("[default]\nretries = -1\n", "retries"),
        ('[default]\ntimeout = "x"\n', "timeout"),
        ('[default]\nurl = "ftp://x"\n', "invalid server URL"),
    ],
)
def test_bad_config_values(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(InvalidSettingsError, match=match):
        load_settings(environ={}, config_path=path)


def test_explicit_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidSettingsError, match="does not exist"):
        load_settings(environ={"UPDL_CONFIG": str(tmp_path / "missing.toml")})


def test_token_never_in_repr(config: Path) -> None:
    settings = load_settings(token="sekrit-value", environ={}, config_path=config)
    assert "sekrit-value" not in repr(settings)
    assert "file-token" not in repr(load_settings(environ={}, config_path=config))
