"""What the installed ``updl`` prints where: results on stdout, everything else on stderr."""

from __future__ import annotations

import os
import subprocess

from tests.conftest import LiveServer, clean_env, console_script


def test_closed_stdout_ends_quietly_like_coreutils(live_server: LiveServer, token: str, make_file,
                                                  run_updl) -> None:
    for index in range(3):
        assert run_updl(live_server, token, "put", str(make_file(f"f{index}.bin", 10))).returncode == 0
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before updl writes a byte: `updl --json ls | head -0`
    try:
        done = subprocess.run([console_script("updl"), "--json", "ls"], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=120, stdin=subprocess.DEVNULL,
                              env=clean_env(UPDL_URL=live_server.url, UPDL_TOKEN=token))
    finally:
        os.close(write_end)
    assert done.stderr == ""
    assert done.returncode == 141
