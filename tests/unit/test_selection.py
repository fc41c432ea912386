"""Which files a batch upload selects and the relative names it gives them."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import pytest

from updl.sdk.errors import SelectionError
from updl.sdk.selection import Unselected, join_prefix, normalize_prefix, select_files


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
        "dist/a.whl",
        "dist/b.tar.gz",
        "dist/sub/c.whl",
        "dist/sub/deep/d.log",
    ]
    assert names("dist", recursive=True, ignore=["dist/b.tar.gz"]) == [
        "dist/a.whl",
        "dist/sub/c.whl",
        "dist/sub/deep/d.log",
    ]
    selected = select_files(["top.txt"])
    assert selected[0].size == len(b"top.txt") and selected[0].path == Path("top.txt")


def test_prefix_is_a_directory() -> None:
    assert normalize_prefix(None) == "" and normalize_prefix("") == ""
    assert normalize_prefix("build/42") == normalize_prefix("build/42/") == "build/42/"
    assert join_prefix("b//", "x/y") == "b/x/y" and join_prefix(None, "x") == "x"


# -- symlinks: not followed below the arguments unless asked (like cp -r, rclone); said, not silent --


@pytest.fixture
def linked(tree: Path) -> Path:
    """``dist/`` with a file link out of the tree, a dir link out, a loop, a broken link, a link inside."""
    secret = tree / "secret"
    secret.mkdir()
    (secret / "id_rsa").write_bytes(b"PRIVATE KEY")
    (tree / "dist" / "key_link").symlink_to("../secret/id_rsa")
    (tree / "dist" / "outside").symlink_to("../secret")
    (tree / "dist" / "sub" / "up").symlink_to("..")  # back to dist: a loop once followed
    (tree / "dist" / "dangling").symlink_to("nowhere")
    (tree / "dist" / "a_link.whl").symlink_to("a.whl")
    return tree


def unselected(*args: str, **kwargs: object) -> tuple[list[str], list[tuple[str, str]]]:
    found: list[Unselected] = []
    chosen = [s.relative for s in select_files(args, on_unselected=found.append, **kwargs)]  # type: ignore[arg-type]
    return chosen, [(u.relative, u.reason) for u in found]


NOT_FOLLOWED = "symlink to {}: not followed without -L/--follow-symlinks"


def test_recursive_walk_skips_and_reports_every_symlink(linked: Path) -> None:
    chosen, skipped = unselected("dist", recursive=True)
    assert chosen == ["dist/a.whl", "dist/b.tar.gz", "dist/sub/c.whl", "dist/sub/deep/d.log"]
    assert skipped == [
        ("dist/a_link.whl", NOT_FOLLOWED.format("a.whl")),
        ("dist/dangling", NOT_FOLLOWED.format("nowhere")),
        ("dist/key_link", NOT_FOLLOWED.format("../secret/id_rsa")),
        ("dist/outside", NOT_FOLLOWED.format("../secret")),
        ("dist/sub/up", NOT_FOLLOWED.format("..")),
    ]
    assert all(not s.path.is_symlink() for s in select_files(["dist"], recursive=True))


def test_globs_do_not_follow_symlinks_either(linked: Path) -> None:
    assert unselected("dist/**", recursive=True)[0] == [
        "dist/a.whl",
        "dist/b.tar.gz",
        "dist/sub/c.whl",
        "dist/sub/deep/d.log",
    ]
    chosen, skipped = unselected("dist/**/*.whl")
    assert chosen == ["dist/a.whl", "dist/sub/c.whl"]
    assert [relative for relative, _ in skipped] == ["dist/a_link.whl", "dist/outside", "dist/sub/up"]
    assert unselected("dist/*")[0] == ["dist/a.whl", "dist/b.tar.gz"]
    assert unselected("*/id_rsa")[0] == ["secret/id_rsa"]
    assert unselected("*/*/id_rsa") == ([], [("dist/outside", NOT_FOLLOWED.format("../secret"))])


def test_follow_symlinks_follows_files_and_dirs_but_not_into_a_loop(linked: Path) -> None:
    chosen, skipped = unselected("dist", recursive=True, follow_symlinks=True)
    assert chosen == [
        "dist/a.whl",
        "dist/a_link.whl",
        "dist/b.tar.gz",
        "dist/key_link",
        "dist/outside/id_rsa",
        "dist/sub/c.whl",
        "dist/sub/deep/d.log",
    ]
    assert skipped == [
        ("dist/dangling", "broken symlink to nowhere"),
        ("dist/sub/up", "symlink to ..: a loop, it leads back to a directory above it"),
    ]
    chosen, skipped = unselected("dist/**/*.whl", follow_symlinks=True)
    assert chosen == ["dist/a.whl", "dist/a_link.whl", "dist/sub/c.whl"]
    assert skipped == [("dist/sub/up", "symlink to ..: a loop, it leads back to a directory above it")]


def test_a_symlink_named_on_the_command_line_is_followed(linked: Path) -> None:
    """As cp does with its arguments: the user named it, so its target is what they mean."""
    assert unselected("dist/key_link") == (["key_link"], [])
    selected = select_files(["dist/outside"], recursive=True)
    assert [(s.relative, s.path.name) for s in selected] == [("outside/id_rsa", "id_rsa")]


def test_other_special_files_are_reported_too(tree: Path) -> None:
    os.mkfifo(tree / "dist" / "pipe")
    assert unselected("dist", recursive=True)[1] == [("dist/pipe", "not a regular file")]
    assert unselected("dist/pipe")[1] == [("pipe", "not a regular file")]


def test_excluded_paths_are_not_reported(linked: Path) -> None:
    _chosen, skipped = unselected("dist", recursive=True, exclude=["*link*", "dist/outside", "*/up"])
    assert skipped == [("dist/dangling", NOT_FOLLOWED.format("nowhere"))]


@pytest.mark.parametrize(
    "pattern",
    [
        "**",
        "**/*.whl",
        "dist/**",
        "dist/**/",
        "*/",
        "*",
        "dist/*/*.whl",
        "./dist/**/*.log",
        ".*",
        "**/.h*",
        ".hidden/**",
        "dist/**/deep",
        "**/deep/*",
        "?ist/*",
        "[dt]*",
        "dist/**/**/d.log",
        "nothing/*",
    ],
)
def test_globs_match_what_the_glob_module_matches_where_there_are_no_symlinks(tree: Path, pattern: str) -> None:
    """updl expands globs itself (to control symlinks); the matching rules are :mod:`glob`'s."""
    for relative in (".hidden/h.whl", "dist/.h.whl", ".top"):
        (tree / relative).parent.mkdir(parents=True, exist_ok=True)
        (tree / relative).write_bytes(b"")
    expected = sorted({os.path.normpath(p) for p in glob.glob(pattern, recursive=True) if os.path.isfile(p)})
    assert sorted(os.path.normpath(s.path) for s in select_files([pattern])) == expected


def test_a_missing_file_is_reported_as_failed_and_the_others_still_selected(tree: Path) -> None:
    found: list[Unselected] = []
    chosen = select_files(["nosuch.bin", "top.txt"], on_unselected=found.append)
    assert [s.relative for s in chosen] == ["top.txt"]
    [missing] = found
    assert missing.relative == "nosuch.bin" and isinstance(missing.error, FileNotFoundError)
    assert missing.error.filename == "nosuch.bin"


def test_a_directory_that_cannot_be_listed_is_reported_as_failed(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not silently left out. (Tests may run as root, which reads anything: the refusal is simulated.)"""
    real_scandir = os.scandir

    def scandir(path: str) -> object:
        if os.path.basename(path) == "deep":
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    found: list[Unselected] = []
    chosen = select_files(["dist"], recursive=True, on_unselected=found.append)
    assert [s.relative for s in chosen] == ["dist/a.whl", "dist/b.tar.gz", "dist/sub/c.whl"]
    assert [(u.relative, u.reason, type(u.error)) for u in found] == [
        ("dist/sub/deep", "cannot list the directory: Permission denied", PermissionError)
    ]
    with pytest.raises(PermissionError):
        select_files(["dist"], recursive=True)  # nobody listening: the error is raised
