"""Which local files a batch upload sends, and the relative path each is stored under.

Naming rules (the relative path goes below ``--prefix`` on the server and into a manifest):

- a plain file argument keeps its base name (``dist/a.whl`` -> ``a.whl``), as a single ``put`` always did;
- ``-r DIR`` keeps DIR's own name, like ``cp -r`` (``dist`` -> ``dist/a.whl``,
  ``build/out`` -> ``out/x/y.tgz``); ``-r .`` sends the current directory's contents;
- a glob (``*``, ``?``, ``[``; ``**`` recursive) keeps the path relative to the
  current directory (``'dist/*.whl'`` -> ``dist/a.whl``); a match outside it is refused.

``--include``/``--exclude`` patterns are matched (``fnmatch``, case-sensitive,
``*`` also crosses ``/``) against that relative path. Paths always use ``/``.
"""

from __future__ import annotations

import errno
import fnmatch
import glob
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import UpdlError

__all__ = ["NoFilesError", "Selected", "SelectionError", "has_magic", "join_prefix", "normalize_prefix",
           "select_files"]


class SelectionError(UpdlError):
    """The arguments cannot be turned into a list of files (a directory without ``-r``, a path outside)."""


class NoFilesError(UpdlError):
    """Nothing matched: no file selected for upload, or no file under the prefix to download."""


@dataclass(frozen=True)
class Selected:
    """A local file to send: where it is, its ``/``-separated path below the prefix, its size when listed."""

    path: Path
    relative: str
    size: int


def has_magic(pattern: str) -> bool:
    """Whether ``pattern`` is a glob (contains ``*``, ``?`` or ``[``)."""
    return glob.has_magic(pattern)


def normalize_prefix(prefix: str | None) -> str:
    """A prefix is a directory: ``''`` stays empty, otherwise it ends with exactly one ``/``."""
    if not prefix:
        return ""
    return prefix.rstrip("/") + "/"


def join_prefix(prefix: str | None, relative: str) -> str:
    """The remote name for ``relative`` below ``prefix``."""
    return normalize_prefix(prefix) + relative


def _regular_size(path: str) -> int | None:
    """Size of a regular file (following symlinks), None for anything else."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def _walk(directory: str, base: str) -> Iterator[tuple[str, str]]:
    """(local path, relative path) of every regular file under ``directory``, sorted; ``base`` prefixes names."""
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        inner = os.path.relpath(root, directory)
        for name in sorted(files):
            relative = name if inner == "." else f"{inner}/{name}"
            relative = relative.replace(os.sep, "/")
            yield os.path.join(root, name), (f"{base}/{relative}" if base else relative)


def _relative_to_cwd(path: str, cwd: str) -> str:
    relative = os.path.relpath(os.path.abspath(path), cwd)
    if relative == ".." or relative.startswith(".." + os.sep) or os.path.isabs(relative):
        raise SelectionError(f"{path} is outside the current directory; run updl from a directory "
                             "that contains it, or use -r DIR")
    return relative.replace(os.sep, "/")


def _expand(argument: str, recursive: bool, cwd: str) -> Iterator[tuple[str, str]]:
    if has_magic(argument):
        for match in sorted(glob.glob(argument, recursive=True)):
            if os.path.isdir(match):
                if recursive:
                    yield from _walk(match, _relative_to_cwd(match, cwd))
                continue  # `**` also matches directories; without -r only files count
            yield match, _relative_to_cwd(match, cwd)
        return
    if os.path.isdir(argument):
        if not recursive:
            raise SelectionError(f"{argument} is a directory; use -r to upload the files in it")
        normalized = os.path.normpath(argument)
        base = "" if normalized == "." else Path(os.path.abspath(normalized)).name
        yield from _walk(argument, base)
        return
    if not os.path.lexists(argument):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), argument)
    yield argument, os.path.basename(argument.rstrip("/"))


def _wanted(relative: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    if include and not any(fnmatch.fnmatchcase(relative, p) for p in include):
        return False
    return not any(fnmatch.fnmatchcase(relative, p) for p in exclude)


def select_files(
    arguments: Iterable[str],
    *,
    recursive: bool = False,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    ignore: Iterable[str | os.PathLike[str]] = (),
    cwd: str | os.PathLike[str] | None = None,
) -> list[Selected]:
    """Expand files, directories (with ``recursive``) and globs into the files to upload.

    A literal path that does not exist raises ``FileNotFoundError``; a glob
    matching nothing contributes nothing. ``ignore`` lists local files never
    to select (e.g. the manifest being written). The first file to claim a
    relative path wins; later duplicates (``-r d 'd/**'``) are dropped.
    Non-regular files (sockets, FIFOs, broken links) are left out.
    """
    base = os.path.abspath(cwd if cwd is not None else os.getcwd())
    ignored = {os.path.realpath(p) for p in ignore}
    chosen: dict[str, Selected] = {}
    for argument in arguments:
        for local, relative in _expand(argument, recursive, base):
            if relative in chosen or not _wanted(relative, include, exclude):
                continue
            if os.path.realpath(local) in ignored:
                continue
            size = _regular_size(local)
            if size is None:
                if not os.path.exists(local) and not has_magic(argument) and local == argument:
                    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), argument)
                continue
            chosen[relative] = Selected(Path(local), relative, size)
    return list(chosen.values())
