"""Which files a batch upload selects and the relative names it gives them."""

from __future__ import annotations

from pathlib import Path

import pytest

from updl.sdk.selection import SelectionError, join_prefix, normalize_prefix, select_files


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for relative in ("dist/a.whl", "dist/b.tar.gz", "dist/sub/c.whl", "dist/sub/deep/d.log", "top.txt"):
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(relative.encode())
    monkeypatch.chdir(tmp_path)
    return tmp_path


def names(*args: str, **kwargs: object) -> list[str]:
    return [s.relative for s in select_files(args, **kwargs)]  # type: ignore[arg-type]


def test_recursive_dir_keeps_its_own_name_like_cp_r(tree: Path) -> None:
    expected = ["dist/a.whl", "dist/b.tar.gz", "dist/sub/c.whl", "dist/sub/deep/d.log"]
    assert names("dist", recursive=True) == expected
    assert names("dist/", recursive=True) == expected
    assert names(str(tree / "dist"), recursive=True) == expected
    assert names("dist/sub", recursive=True) == ["sub/c.whl", "sub/deep/d.log"]
    assert names(".", recursive=True) == ["top.txt", *expected]  # '.' has no name: its contents


def test_globs_keep_the_path_relative_to_the_current_directory(tree: Path) -> None:
    assert names("dist/*.whl") == ["dist/a.whl"]
    assert names("dist/**/*.whl") == ["dist/a.whl", "dist/sub/c.whl"]
    assert names("./dist/sub/*/*.log") == ["dist/sub/deep/d.log"]
    assert names("dist/*") == ["dist/a.whl", "dist/b.tar.gz"]  # a matched directory needs -r
    assert names("nothing/*.whl") == []


def test_glob_outside_the_current_directory_is_refused(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree / "dist")
    with pytest.raises(SelectionError, match="outside the current directory"):
        select_files(["../*.txt"])


def test_plain_file_keeps_its_base_name_and_missing_or_directory_fail(tree: Path) -> None:
    assert names("dist/sub/c.whl") == ["c.whl"]
    with pytest.raises(FileNotFoundError):
        select_files(["dist/nope.whl"])
    with pytest.raises(SelectionError, match="use -r"):
        select_files(["dist"])


def test_include_exclude_match_the_relative_path(tree: Path) -> None:
    assert names("dist", recursive=True, exclude=["*.log", "dist/sub/*.whl"]) == ["dist/a.whl", "dist/b.tar.gz"]
    assert names("dist", recursive=True, include=["*.whl"]) == ["dist/a.whl", "dist/sub/c.whl"]
    assert names("dist", recursive=True, include=["*.whl"], exclude=["*/sub/*"]) == ["dist/a.whl"]


def test_duplicates_and_ignored_files_are_dropped(tree: Path) -> None:
    assert names("dist", "dist/**/*.whl", recursive=True) == [
        "dist/a.whl", "dist/b.tar.gz", "dist/sub/c.whl", "dist/sub/deep/d.log"]
    assert names("dist", recursive=True, ignore=["dist/b.tar.gz"]) == [
        "dist/a.whl", "dist/sub/c.whl", "dist/sub/deep/d.log"]
    selected = select_files(["top.txt"])
    assert selected[0].size == len(b"top.txt") and selected[0].path == Path("top.txt")


def test_prefix_is_a_directory() -> None:
    assert normalize_prefix(None) == "" and normalize_prefix("") == ""
    assert normalize_prefix("build/42") == normalize_prefix("build/42/") == "build/42/"
    assert join_prefix("b//", "x/y") == "b/x/y" and join_prefix(None, "x") == "x"
