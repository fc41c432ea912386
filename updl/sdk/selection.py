"""Which local files a batch upload sends, and the relative path each is stored under.

Naming rules (the relative path goes below ``--prefix`` on the server and into a manifest):

- a plain file argument keeps its base name (``dist/a.whl`` -> ``a.whl``), as a single ``put`` always did;
- ``-r DIR`` keeps DIR's own name, like ``cp -r`` (``dist`` -> ``dist/a.whl``,
  ``build/out`` -> ``out/x/y.tgz``); ``-r .`` sends the current directory's contents;
- a glob (``*``, ``?``, ``[``; ``**`` recursive) keeps the path relative to the
  current directory (``'dist/*.whl'`` -> ``dist/a.whl``); a match outside it is refused.

``--include``/``--exclude`` patterns are matched (``fnmatch``, case-sensitive,
``*`` also crosses ``/``) against that relative path. Paths always use ``/``.

Symlinks, as ``cp -r`` and rclone treat them: an argument named on the command
line is followed (the user named it); below it, walking ``-r`` trees and
expanding globs, a symlink is not followed, neither to a file (``dist/key ->
../../secret/id_rsa`` would send a file from outside the tree) nor to a
directory, and each one is reported as :class:`Unselected`. With
``follow_symlinks`` they are followed, except into a directory that is one of
the walk's own ancestors (a loop). Globs are expanded here, not by
:mod:`glob`, because :mod:`glob`'s ``**`` always follows directory symlinks,
loops included; the matching rules are the same (``*`` does not cross ``/``,
``**`` spans directories, names starting with ``.`` only match a pattern that does).
"""

from __future__ import annotations

import errno
import fnmatch
import glob
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import SelectionError

__all__ = [
    "Selected",
    "Unselected",
    "has_magic",
    "join_prefix",
    "normalize_prefix",
    "select_files",
    "select_tree",
    "wanted",
]


@dataclass(frozen=True)
class Selected:
    """A local file to send: where it is, its ``/``-separated path below the prefix, its size when listed."""

    path: Path
    relative: str
    size: int


@dataclass(frozen=True)
class Unselected:
    """A path found but not sent, and why.

    ``error`` is None for one left out on purpose (a symlink not followed, a
    loop, a FIFO): a batch reports it as skipped. It is set for a file named
    on the command line that cannot be sent (missing): reported as failed.
    """

    path: Path
    relative: str
    reason: str
    error: OSError | None = None


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


def _relative_to_cwd(path: str, cwd: str) -> str:
    relative = os.path.relpath(os.path.abspath(path), cwd)
    if relative == ".." or relative.startswith(".." + os.sep) or os.path.isabs(relative):
        raise SelectionError(
            f"{path} is outside the current directory; run updl from a directory that contains it, or use -r DIR"
        )
    return relative.replace(os.sep, "/")


def wanted(relative: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """Whether ``--include``/``--exclude`` keep ``relative`` (``fnmatch``, case-sensitive, ``*`` crosses ``/``)."""
    return _wanted(relative, include, exclude)


def _wanted(relative: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    if include and not any(fnmatch.fnmatchcase(relative, p) for p in include):
        return False
    return not any(fnmatch.fnmatchcase(relative, p) for p in exclude)


Ancestors = frozenset[tuple[int, int]]


def _ancestry(directory: str) -> Ancestors:
    """(device, inode) of ``directory`` and of every directory above its real path: where a loop would lead."""
    found: set[tuple[int, int]] = set()
    path = os.path.realpath(directory)
    while True:
        try:
            st = os.stat(path)
        except OSError:
            break
        found.add((st.st_dev, st.st_ino))
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return frozenset(found)


class _Finder:
    """Walks ``-r`` trees and expands globs under one symlink policy, reporting what it leaves out."""

    def __init__(
        self,
        cwd: str,
        follow: bool,
        include: Sequence[str],
        exclude: Sequence[str],
        on_unselected: Callable[[Unselected], None] | None,
    ) -> None:
        self.cwd = cwd
        self.follow = follow
        self.include = include
        self.exclude = exclude
        self._on_unselected = on_unselected
        self._reported: set[str] = set()

    def report(self, path: str, relative: str, reason: str, error: OSError | None = None) -> None:
        """Tell the caller about a path left out (each once); a failure nobody listens for is raised."""
        if self._on_unselected is None:
            if error is not None:
                raise error
            return
        if path not in self._reported:
            self._reported.add(path)
            self._on_unselected(Unselected(Path(path), relative, reason, error))

    def _display(self, path: str) -> str:
        try:
            return _relative_to_cwd(path, self.cwd)
        except SelectionError:
            return path

    def entry(
        self, path: str, relative: str, ancestors: Ancestors, *, descending: bool = False
    ) -> tuple[str, Ancestors] | None:
        """What a path found below an argument is: ``("file", ...)``, ``("dir", its ancestors)`` or None.

        None means left out, and reported unless excluded. ``descending``: only
        a directory to go into is wanted (for a glob's ``**`` or middle part),
        so anything else is passed over in silence.
        """
        try:
            st = os.lstat(path)
        except OSError:
            return None  # gone since it was listed
        target = os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
        if target is not None:
            try:
                st = os.stat(path)
            except OSError:
                if not descending:
                    reason = f"broken symlink to {target}" if self.follow else self._not_followed(target)
                    self._leave(path, relative, reason, is_dir=False)
                return None
        is_dir = stat.S_ISDIR(st.st_mode)
        if descending and not is_dir:
            return None
        if target is not None and not self.follow:
            self._leave(path, relative, self._not_followed(target), is_dir)
            return None
        if is_dir:
            identity = (st.st_dev, st.st_ino)
            if identity in ancestors:
                link = f"symlink to {target}: " if target is not None else ""  # or a bind mount
                self._leave(path, relative, f"{link}a loop, it leads back to a directory above it", is_dir)
                return None
            return "dir", ancestors | {identity}
        if stat.S_ISREG(st.st_mode):
            return "file", ancestors
        self._leave(path, relative, "not a regular file", is_dir)
        return None

    @staticmethod
    def _not_followed(target: str) -> str:
        return f"symlink to {target}: not followed without -L/--follow-symlinks"

    def _leave(self, path: str, relative: str, reason: str, is_dir: bool) -> None:
        # A directory may hold files --include wants, so only --exclude silences it.
        if _wanted(relative, () if is_dir else self.include, self.exclude):
            self.report(path, relative, reason)

    def walk(self, directory: str, base: str) -> Iterator[tuple[str, str]]:
        """(local path, relative path) of every file below ``directory``: a directory's files
        (sorted) before its subdirectories (sorted, each depth first); ``base`` prefixes names."""
        stack = [(directory, base, _ancestry(directory))]
        while stack:
            current, relative, ancestors = stack.pop()
            try:
                with os.scandir(current) as listing:
                    names = sorted(entry.name for entry in listing)
            except OSError as error:
                self.report(current, relative or ".", f"cannot list the directory: {error.strerror}", error)
                continue
            below = []
            for name in names:
                path = os.path.join(current, name)
                inner = f"{relative}/{name}" if relative else name
                found = self.entry(path, inner, ancestors)
                if found is None:
                    continue
                kind, inside = found
                if kind == "file":
                    yield path, inner
                else:
                    below.append((path, inner, inside))
            stack.extend(reversed(below))

    def glob(self, pattern: str) -> Iterator[tuple[str, bool]]:
        """(path, is a directory) of every match of ``pattern``, in the order found."""
        parts = pattern.replace(os.sep, "/").split("/")
        start = "/" if pattern.startswith(("/", os.sep)) else ""
        dirs_only = parts[-1] == ""
        parts = [part for part in parts if part]
        for path, is_dir in self._match(start, parts, _ancestry(start or ".")):
            if is_dir or not dirs_only:
                yield path, is_dir

    def _match(self, base: str, parts: list[str], ancestors: Ancestors) -> Iterator[tuple[str, bool]]:
        """Matches of ``parts`` below ``base``; ``ancestors``: of ``base``, to spot loops."""
        if not parts:  # base itself matched: what is it?
            found = self.entry(base, self._display(base), ancestors)
            if found is not None:
                yield base, found[0] == "dir"
            return
        head, rest = parts[0], parts[1:]
        if not has_magic(head):
            path = os.path.join(base, head)
            if not rest:
                if os.path.lexists(path):
                    yield from self._match(path, rest, ancestors)
            elif os.path.isdir(path):  # a directory the pattern names: followed like any path
                yield from self._match(path, rest, _ancestry(path))
            return
        if head == "**":  # `**` spans zero directories too
            if rest:
                yield from self._match(base, rest, ancestors)
            elif base and os.path.isdir(base):
                yield base, True
        try:
            with os.scandir(base or ".") as listing:
                names = sorted(entry.name for entry in listing)
        except OSError:
            return  # like glob: a directory that cannot be listed matches nothing
        for name in names:
            if name.startswith(".") and not head.startswith("."):
                continue
            path = os.path.join(base, name)
            if head == "**" and not rest:  # a trailing `**` matches everything below, at every depth
                found = self.entry(path, self._display(path), ancestors)
                if found is not None and found[0] == "dir":
                    yield from self._match(path, parts, found[1])
                elif found is not None:
                    yield path, False
            elif head == "**" or fnmatch.fnmatchcase(name, head):
                if not rest:
                    yield from self._match(path, rest, ancestors)
                    continue
                found = self.entry(path, self._display(path), ancestors, descending=True)
                if found is not None:
                    yield from self._match(path, parts if head == "**" else rest, found[1])


def _expand(finder: _Finder, argument: str, recursive: bool) -> Iterator[tuple[str, str]]:
    if has_magic(argument):
        for match, is_dir in sorted(finder.glob(argument)):
            relative = _relative_to_cwd(match, finder.cwd)
            if not is_dir:
                yield match, relative
            elif recursive:
                yield from finder.walk(match, relative)
            # without -r a matched directory (`**` matches them too) adds nothing
        return
    if os.path.isdir(argument):
        if not recursive:
            raise SelectionError(f"{argument} is a directory; use -r to upload the files in it")
        normalized = os.path.normpath(argument)
        base = "" if normalized == "." else Path(os.path.abspath(normalized)).name
        yield from finder.walk(argument, base)
        return
    relative = os.path.basename(argument.rstrip("/"))
    if not os.path.lexists(argument):
        finder.report(
            argument,
            relative,
            "no such local file",
            FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), argument),
        )
        return
    yield argument, relative


def select_files(
    arguments: Iterable[str],
    *,
    recursive: bool = False,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    ignore: Iterable[str | os.PathLike[str]] = (),
    cwd: str | os.PathLike[str] | None = None,
    follow_symlinks: bool = False,
    on_unselected: Callable[[Unselected], None] | None = None,
) -> list[Selected]:
    """Expand files, directories (with ``recursive``) and globs into the files to upload.

    A glob matching nothing contributes nothing. ``ignore`` lists local files
    never to select (e.g. the manifest being written). The first file to claim
    a relative path wins; later duplicates (``-r d 'd/**'``) are dropped.
    Symlinks below the arguments are followed only with ``follow_symlinks``
    (see the module docstring). ``on_unselected`` hears of every path left
    out: symlinks not followed, loops, FIFOs and other special files
    (``error`` None), and literal paths that do not exist (``error`` a
    ``FileNotFoundError``); without it, such a literal path raises that error.
    """
    base = os.path.abspath(cwd if cwd is not None else os.getcwd())
    finder = _Finder(base, follow_symlinks, include, exclude, on_unselected)
    ignored = {os.path.realpath(p) for p in ignore}
    chosen: dict[str, Selected] = {}
    for argument in arguments:
        for local, relative in _expand(finder, argument, recursive):
            if relative in chosen or not _wanted(relative, include, exclude):
                continue
            if os.path.realpath(local) in ignored:
                continue
            size = _regular_size(local)
            if size is None:  # a literal argument (what walks and globs find is checked as found)
                if os.path.exists(local):
                    finder.report(local, relative, "not a regular file")
                else:  # a broken symlink
                    finder.report(
                        local,
                        relative,
                        "no such local file",
                        FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), argument),
                    )
                continue
            chosen[relative] = Selected(Path(local), relative, size)
    return list(chosen.values())


def select_tree(
    directory: str | os.PathLike[str],
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    follow_symlinks: bool = False,
    on_unselected: Callable[[Unselected], None] | None = None,
) -> list[Selected]:
    """Every file below ``directory``, named by its path relative to it (``a/b.txt``, not ``dir/a/b.txt``).

    What ``updl sync`` compares with a prefix. The same walk, symlink policy
    and patterns as ``select_files(["DIR"], recursive=True)``; only the names differ.
    """
    root = os.fspath(directory)
    finder = _Finder(os.path.abspath(root), follow_symlinks, include, exclude, on_unselected)
    chosen: list[Selected] = []
    for local, relative in finder.walk(root, ""):
        if not _wanted(relative, include, exclude):
            continue
        size = _regular_size(local)
        if size is not None:  # else gone since it was listed
            chosen.append(Selected(Path(local), relative, size))
    return chosen
