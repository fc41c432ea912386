"""``updl-server``'s user commands say which data dir they used; ``-h`` is help."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.live_server import clean_env, console_script


def server_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [console_script("updl-server"), *args], capture_output=True, text=True, env=clean_env(), cwd=cwd, timeout=60
    )


def test_add_user_in_a_new_data_dir_warns_and_names_it(tmp_path: Path) -> None:
    first = server_cli("add-user", "alice", "--data-dir", "updl-data", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("updl_") and first.stdout.count("\n") == 1  # the token, alone
    where = tmp_path.resolve() / "updl-data"
    assert first.stderr == (
        f"updl-server: warning: data dir {where} had no database: created a new one for "
        f"user 'alice'; the token works only with a server run with --data-dir {where}\n"
    )
    second = server_cli("add-user", "bob", "--data-dir", "updl-data", cwd=tmp_path)
    assert second.returncode == 0
    assert second.stderr == f"updl-server: added user 'bob' to data dir {where}\n"


def test_new_token_refuses_a_data_dir_no_server_used(tmp_path: Path) -> None:
    result = server_cli("new-token", "alice", "--data-dir", "elsewhere", cwd=tmp_path)
    assert result.returncode == 1 and result.stdout == ""
    assert f"no database in {tmp_path.resolve() / 'elsewhere'}" in result.stderr
    assert not (tmp_path / "elsewhere").exists()  # nothing left behind


@pytest.mark.parametrize("args", [("-h",), ("add-user", "-h"), ("run", "-h")])
def test_dash_h_is_help(args: tuple[str, ...], tmp_path: Path) -> None:
    result = server_cli(*args, cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("Usage: updl-server")
