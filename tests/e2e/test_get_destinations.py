"""``updl get -o``: a trailing slash means a directory, created if missing, on every form of ``get``."""

from __future__ import annotations

from pathlib import Path

from tests.support.live_server import LiveServer


def _upload(live_server: LiveServer, token: str, run_updl, make_file, *names: str) -> dict[str, bytes]:
    stored = {}
    for name in names:
        source = make_file(name.replace("/", "_"), 1000)
        assert run_updl(live_server, token, "put", str(source), "--name", name).returncode == 0
        stored[name] = source.read_bytes()
    return stored


def test_one_name_into_a_missing_directory_with_a_slash(
    live_server: LiveServer, token: str, run_updl, make_file, tmp_path: Path
) -> None:
    stored = _upload(live_server, token, run_updl, make_file, "build/42/app.tar.gz")
    work = tmp_path / "work"
    work.mkdir()
    get = run_updl(live_server, token, "get", "build/42/app.tar.gz", "-o", "out/", cwd=work)
    assert get.returncode == 0, get.stderr
    assert (work / "out").is_dir()
    assert (work / "out" / "app.tar.gz").read_bytes() == stored["build/42/app.tar.gz"]
    # Without the slash, a missing -o is the file to write, as before.
    assert run_updl(live_server, token, "get", "build/42/app.tar.gz", "-o", "copy", cwd=work).returncode == 0
    assert (work / "copy").read_bytes() == stored["build/42/app.tar.gz"]


def test_several_names_and_prefix_create_the_directory(
    live_server: LiveServer, token: str, run_updl, make_file, tmp_path: Path
) -> None:
    stored = _upload(live_server, token, run_updl, make_file, "t/a.bin", "t/b.bin")
    for args, out in [
        (("t/a.bin", "t/b.bin", "-o", "newdir/"), "newdir"),
        (("t/a.bin", "t/b.bin", "-o", "other/new"), "other/new"),
        (("--prefix", "t/", "-o", "newtree/"), "newtree"),
    ]:
        get = run_updl(live_server, token, "get", *args, cwd=tmp_path)
        assert get.returncode == 0, get.stderr
        assert (tmp_path / out / "a.bin").read_bytes() == stored["t/a.bin"]
        assert (tmp_path / out / "b.bin").read_bytes() == stored["t/b.bin"]
