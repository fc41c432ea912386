"""Downloads only ever write the file they were asked for: temporary files nothing else can name,
no symlink followed, no path outside ``-o DIR``, missing directories created — against a real server."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import updl
from tests.support.live_server import LiveServer
from updl.sdk.batch_download import download_batch, plan_downloads
from updl.sdk.errors import UnsafeNameError

BIG = b"\x00" * (3 * 1024 * 1024)  # several chunks: progress events arrive while the file is in flight
OTHER = b"\xff" * 5000
VICTIM = b"must stay as it is"


@pytest.fixture
def client(live_server: LiveServer, token: str) -> Iterator[updl.Client]:
    with updl.Client(live_server.url, token, sleep=lambda _s: None) as c:
        yield c


def temporaries(directory: Path) -> list[Path]:
    return sorted(directory.glob(".*.updl-*.part"))


def once(action: Callable[[], object]) -> Callable[[updl.ProgressEvent], None]:
    """A progress callback that runs ``action`` at the first event: the download is in flight."""
    done: list[bool] = []

    def on_progress(_event: updl.ProgressEvent) -> None:
        if not done:
            done.append(True)
            action()

    return on_progress


@pytest.mark.parametrize("first", ["x", "x.part"])
def test_a_file_named_like_another_downloads_part_file_cannot_take_its_place(
    client: updl.Client, tmp_path: Path, first: str
) -> None:
    # Issue 8 item 1: with `--jobs 2`, `x.part` finishing while `x` is in flight used to be moved
    # to `out/x`. Both orders, made deterministic by running one download inside the other.
    client.upload(_source(tmp_path, "x", BIG), "clash/x")
    client.upload(_source(tmp_path, "x.part", OTHER), "clash/x.part")
    out = tmp_path / "out"
    out.mkdir()
    second = "x.part" if first == "x" else "x"
    with updl.Client(client.settings.url, client.settings.token) as other:
        client.download(
            f"clash/{first}", out / first, on_progress=once(lambda: other.download(f"clash/{second}", out / second))
        )
    assert (out / "x").read_bytes() == BIG and (out / "x.part").read_bytes() == OTHER
    assert sorted(p.name for p in out.iterdir()) == ["x", "x.part"]


def test_the_final_rename_moves_only_the_file_it_wrote(client: updl.Client, tmp_path: Path) -> None:
    # Whatever name the temporary file has, a server file of that name downloaded meanwhile
    # replaces it: the download in flight must fail rather than move the other file into place.
    client.upload(_source(tmp_path, "x", BIG), "clash/x")
    out = tmp_path / "out"
    out.mkdir()

    def collide() -> None:
        [part] = temporaries(out)
        client.upload(_source(tmp_path, "y", OTHER), f"clash/{part.name}")
        with updl.Client(client.settings.url, client.settings.token) as other:
            other.download(f"clash/{part.name}", part)

    with pytest.raises(updl.UpdlError, match="replaced by another file"):
        client.download("clash/x", out / "x", on_progress=once(collide))
    assert not (out / "x").exists()
    [landed] = out.iterdir()
    assert landed.read_bytes() == OTHER  # the other download's file, untouched


def test_get_prefix_jobs_2_with_x_and_x_part_on_the_server(
    live_server: LiveServer, token: str, client: updl.Client, run_updl, tmp_path: Path
) -> None:
    client.upload(_source(tmp_path, "x", BIG), "clash/x")
    client.upload(_source(tmp_path, "x.part", OTHER), "clash/x.part")
    out = tmp_path / "out"
    result = run_updl(live_server, token, "get", "--prefix", "clash/", "-o", str(out), "--jobs", "2")
    assert result.returncode == 0, result.stderr
    assert (out / "x").read_bytes() == BIG and (out / "x.part").read_bytes() == OTHER
    assert sorted(p.name for p in out.iterdir()) == ["x", "x.part"]


def test_a_users_own_x_part_is_never_touched(
    live_server: LiveServer, token: str, client: updl.Client, run_updl, tmp_path: Path
) -> None:
    client.upload(_source(tmp_path, "x", BIG), "mine/x")
    out = tmp_path / "out"
    out.mkdir()
    (out / "x.part").write_bytes(VICTIM)
    result = run_updl(live_server, token, "get", "--prefix", "mine/", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert (out / "x").read_bytes() == BIG and (out / "x.part").read_bytes() == VICTIM
    assert sorted(p.name for p in out.iterdir()) == ["x", "x.part"]


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    path = outside / "victim.txt"
    path.write_bytes(VICTIM)
    return path


def test_a_symlink_at_the_old_part_name_does_not_escape_the_output_directory(
    live_server: LiveServer, token: str, client: updl.Client, run_updl, tmp_path: Path, victim: Path
) -> None:
    # Issue 8 item 2, as reported.
    client.upload(_source(tmp_path, "r", OTHER), "p/report.txt")
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.txt.part").symlink_to(Path("..") / "outside" / "victim.txt")
    result = run_updl(live_server, token, "get", "--prefix", "p/", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert victim.read_bytes() == VICTIM
    assert (out / "report.txt").read_bytes() == OTHER
    assert os.readlink(out / "report.txt.part") == str(Path("..") / "outside" / "victim.txt")


def test_a_part_file_swapped_for_a_symlink_is_not_followed_on_resume(
    client: updl.Client, tmp_path: Path, victim: Path
) -> None:
    client.upload(_source(tmp_path, "x", BIG), "x")
    out = tmp_path / "out"

    def interrupt(event: updl.ProgressEvent) -> None:
        if event.transferred > 0:  # some bytes are on disk: they are kept for the next run
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        client.download("x", out / "x", on_progress=interrupt)
    [part] = temporaries(out)
    part.unlink()
    part.symlink_to(victim)
    client.download("x", out / "x")
    assert victim.read_bytes() == VICTIM and part.is_symlink()
    assert (out / "x").read_bytes() == BIG


def test_a_symlink_at_the_destination_is_replaced_not_written_through(
    client: updl.Client, tmp_path: Path, victim: Path
) -> None:
    client.upload(_source(tmp_path, "x", OTHER), "x")
    link = tmp_path / "link"
    link.symlink_to(victim)
    client.download("x", link)
    assert not link.is_symlink() and link.read_bytes() == OTHER
    assert victim.read_bytes() == VICTIM


def test_a_directory_swapped_for_a_symlink_after_planning_is_refused(
    client: updl.Client, tmp_path: Path, victim: Path
) -> None:
    client.upload(_source(tmp_path, "x", OTHER), "p/sub/x")
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    tasks, decided = plan_downloads(client.iter_files("p/"), "p/", out)
    assert len(tasks) == 1 and not decided
    (out / "sub").rmdir()
    (out / "sub").symlink_to(victim.parent)  # after the plan checked the path
    [outcome] = download_batch(client, tasks)
    assert outcome.failed and isinstance(outcome.error, UnsafeNameError)
    assert sorted(p.name for p in victim.parent.iterdir()) == ["victim.txt"]


def test_missing_directories_are_created(client: updl.Client, tmp_path: Path) -> None:
    # Issue 8 item 14 (SDK): like `aws s3 cp`, a missing parent is created; a trailing `/` means a directory.
    client.upload(_source(tmp_path, "x", OTHER), "build/app.tar.gz")
    client.download("build/app.tar.gz", tmp_path / "out" / "deep" / "app.tar.gz")
    client.download("build/app.tar.gz", f"{tmp_path / 'dir'}/")
    assert (tmp_path / "out" / "deep" / "app.tar.gz").read_bytes() == OTHER
    assert (tmp_path / "dir" / "app.tar.gz").read_bytes() == OTHER


def test_a_local_failure_names_the_destination_not_the_temporary_file(client: updl.Client, tmp_path: Path) -> None:
    client.upload(_source(tmp_path, "x", BIG), "x")
    target = tmp_path / "x"
    with pytest.raises(IsADirectoryError) as failure:  # a directory appears there meanwhile
        client.download("x", target, on_progress=once(target.mkdir))
    assert failure.value.filename == str(target) and failure.value.filename2 is None
    assert ".part" not in str(failure.value) and "updl-" not in str(failure.value)


def test_a_long_name_is_not_made_too_long_by_its_temporary_file(client: updl.Client, tmp_path: Path) -> None:
    client.upload(_source(tmp_path, "x", OTHER), "x")
    target = tmp_path / ("n" * 252)  # a valid name; with ".part" appended it would not be
    client.download("x", target)
    assert target.read_bytes() == OTHER


def _source(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / "src" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
