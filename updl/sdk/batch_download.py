"""Downloading everything under a prefix into a directory, recreating the paths below the prefix.

A name becomes a local path only if it stays inside the output directory:
names that are empty, absolute-looking (``/x``, ``C:x``), contain a backslash
or a control character, or have an empty, ``.`` or ``..`` segment are refused,
and so is any path that resolves outside (through a symlink) — when planned,
and again when the download opens the directory it writes in. With a
manifest, the manifest decides which files are expected: each must exist on
the server with the digest listed, and is checked again once downloaded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from .batch import FATAL_ERRORS, Job, Outcome, Task, run_batch
from .client import Client
from .errors import ChecksumMismatchError, MissingFilesError, NotFoundError, UnsafeNameError, UpdlError
from .hashing import digest_file
from .manifest import Entry
from .models import FileInfo
from .progress import ProgressCallback
from .retry import RetryEvent
from .selection import normalize_prefix

__all__ = ["destination", "download_batch", "name_problem", "plan_downloads", "plan_named_downloads"]

_DRIVE = re.compile(r"^[A-Za-z]:")


def name_problem(relative: str) -> str | None:
    """Why ``relative`` cannot become a path below the output directory, or None."""
    if not relative:
        return "empty"
    if relative.startswith("/") or _DRIVE.match(relative):
        return "absolute"
    if "\\" in relative:
        return "contains a backslash"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in relative):
        return "contains a control character"
    if any(segment in ("", ".", "..") for segment in relative.split("/")):
        return "has an empty, '.' or '..' segment"
    return None


def destination(out_dir: Path, relative: str) -> Path:
    """``out_dir / relative``, after checking that it stays inside ``out_dir`` (symlinks resolved)."""
    problem = name_problem(relative)
    if problem is not None:
        raise UnsafeNameError(f"refusing to write {relative!r}: {problem}")
    target = out_dir / relative
    base = out_dir.resolve()
    if not target.resolve().is_relative_to(base):
        raise UnsafeNameError(f"refusing to write {relative!r}: it resolves outside {out_dir}")
    return target


def plan_downloads(
    files: Iterable[FileInfo],
    prefix: str | None,
    out_dir: Path,
    manifest: Sequence[Entry] | None = None,
) -> tuple[list[Task], list[Outcome]]:
    """Tasks for the files to fetch, and outcomes decided without fetching (refused, not listed, missing)."""
    prefix = normalize_prefix(prefix)
    expected = {e.path: e for e in manifest} if manifest is not None else None
    tasks: list[Task] = []
    decided: list[Outcome] = []
    seen: set[str] = set()
    for info in files:
        relative = info.name[len(prefix) :]
        seen.add(relative)
        entry = expected.get(relative) if expected is not None else None
        try:
            target = destination(out_dir, relative)
        except UnsafeNameError as error:
            decided.append(
                Outcome(
                    Task(info.name, out_dir / "?", relative, info.size),
                    "failed",
                    size=info.size,
                    md5=info.md5,
                    error=error,
                )
            )
            continue
        if expected is not None and entry is None:
            decided.append(
                Outcome(
                    Task(info.name, target, relative, info.size),
                    "skipped",
                    size=info.size,
                    md5=info.md5,
                    reason="not in the manifest",
                )
            )
            continue
        want = {entry.algorithm: entry.digest} if entry is not None else {}
        tasks.append(Task(info.name, target, relative, info.size, want, info.md5))
    for path, entry in (expected or {}).items():
        if path not in seen:
            missing = Task(prefix + path, out_dir / path, path, None, {entry.algorithm: entry.digest})
            decided.append(
                Outcome(
                    missing,
                    "failed",
                    error=MissingFilesError(f"{prefix + path} is listed in the manifest but not on the server"),
                )
            )
    return tasks, decided


def plan_named_downloads(client: Client, names: Sequence[str], out_dir: Path) -> tuple[list[Task], list[Outcome]]:
    """Tasks for ``get NAME NAME...``: each file into ``out_dir/<its base name>``.

    Asks the server (``HEAD``) for each file's size and MD5 first. A name the
    server does not have or refuses, whose base name cannot be a local file
    name, or whose base name an earlier NAME already took is decided as failed.
    """
    tasks: list[Task] = []
    decided: list[Outcome] = []
    taken: set[str] = set()
    for name in names:
        base = name.rsplit("/", 1)[-1]
        task = Task(name, out_dir / (base or "?"), base)
        try:
            if base in taken:
                raise UnsafeNameError(f"refusing to write {base!r} twice: another NAME has the same base name")
            target = destination(out_dir, base)
        except UnsafeNameError as error:
            decided.append(Outcome(task, "failed", error=error))
            continue
        taken.add(base)
        try:
            info = client.head(name)
        except UpdlError as error:  # e.g. 400 for a name the server refuses: that name's failure
            if isinstance(error, FATAL_ERRORS):
                raise  # a refused token or a dead server would fail every later name too
            decided.append(Outcome(task, "failed", error=error))
            continue
        if info is None:
            decided.append(Outcome(task, "failed", error=NotFoundError(f"no such file on the server: {name}")))
            continue
        tasks.append(Task(name, target, base, info.size, md5=info.md5))
    return tasks, decided


def _mismatch(task: Task, algorithm: str, actual: str, where: str) -> ChecksumMismatchError:
    expected = task.expected[algorithm]
    return ChecksumMismatchError(
        f"{task.name}: {where} {algorithm} {actual} differs from the manifest's {expected}",
        expected=expected,
        actual=actual,
    )


def _download(client: Client, job: Job[Any], *, retries: int | None, preserve: bool = True) -> Outcome:
    task = job.task
    if "md5" in task.expected and task.md5 is not None and task.md5 != task.expected["md5"]:
        raise _mismatch(task, "md5", task.md5, "the server's")  # nothing downloaded
    job.on_start()
    # The plan checked the path; the download checks again as it opens the directory (anything
    # may have changed since) and stops at the listed size.
    out_dir = task.path.parents[task.relative.count("/")]  # plans build path = out_dir / relative
    info = client.download(
        task.name,
        task.path,
        on_progress=job.on_progress,
        on_retry=job.on_retry,
        retries=retries,
        size=task.size,
        within=out_dir,
        preserve=preserve,
    )
    digests = {"md5": info.md5}
    for algorithm in task.expected:
        if algorithm != "md5":  # one read of the verified file: the server only vouches for MD5
            digests.update(digest_file(task.path, (algorithm,)))
        if digests[algorithm] != task.expected[algorithm]:
            os.unlink(task.path)  # a file that fails verification must not look downloaded
            raise _mismatch(task, algorithm, digests[algorithm], "the downloaded")
    return Outcome(task, "downloaded", size=info.size, md5=info.md5, digests=digests, attempts=job.attempts, info=info)


def download_batch(
    client: Client,
    tasks: Sequence[Task],
    *,
    jobs: int = 1,
    retries: int | None = None,
    on_start: Callable[[Task], None] | None = None,
    on_progress: ProgressCallback | None = None,
    on_retry: Callable[[RetryEvent], None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    preserve: bool = True,
) -> list[Outcome]:
    """Download every task to its path, verified by MD5 and, when given, by the manifest's digest.

    ``preserve``: restore each file's recorded mode and mtime (see :meth:`Client.download`).
    """

    def work(worker: Client, job: Job[Any]) -> Outcome:
        return _download(worker, job, retries=retries, preserve=preserve)

    return run_batch(
        client,
        tasks,
        work,
        jobs=jobs,
        on_start=on_start,
        on_progress=on_progress,
        on_retry=on_retry,
        on_outcome=on_outcome,
    )
