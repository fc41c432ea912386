"""Sync a local directory and a prefix, either way, moving only files whose content differs.

Content, not time: a file is the same when the sizes are equal *and* the
local MD5 (computed streaming, ``jobs`` files at a time) equals the MD5 the
server verified when it stored the file. A size that differs settles it
without reading anything; an mtime never does (a CI checkout gives every
file a new one, and a rebuilt file can keep an old one). SHA-256 is not used
because the server does not keep one; MD5 is what it verified.

One listing of the prefix (pages of 1000) and one walk of the directory make
the plan (:class:`SyncPlan`); then the transfers run as a batch
(:mod:`updl.sdk.batch`: the same outcomes, records and exit codes as ``put``
and ``get``), and, with ``delete``, the destination's files that the source
no longer has are removed last, and only when no transfer failed (a failed
sync must not also lose the old copies). ``--include``/``--exclude`` apply
to both sides: an excluded file is neither sent nor deleted.

Deleting many files is refused without ``force`` (:class:`TooManyDeletionsError`,
before anything moves): more than :data:`DELETE_MAX` files, or more than
:data:`DELETE_FREE` files that are also more than :data:`DELETE_SHARE` of the
destination's files. A wrong prefix or an empty source directory then costs
a message, not a bucket.

Downloads restore the recorded mode and mtime (``preserve``); a local file
that already has the right content only gets those attributes fixed, without
moving a byte. Uploads of unchanged content are skipped even when only the
local mode or mtime changed: the bytes would be the same.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC
from pathlib import Path
from typing import Any, BinaryIO, cast

from .attributes import PERMISSION_BITS, apply_attributes, local_attributes
from .batch import Job, Outcome, Task, run_batch
from .batch_download import destination as safe_destination
from .batch_download import download_batch
from .batch_upload import unselected_outcomes, upload_batch
from .client import Client
from .errors import TooManyDeletionsError, UnsafeNameError
from .hashing import md5_of
from .models import FileInfo
from .progress import ProgressCallback
from .retry import RetryEvent
from .selection import Unselected, normalize_prefix, select_tree, wanted

__all__ = [
    "DELETE_FREE",
    "DELETE_MAX",
    "DELETE_SHARE",
    "SyncPlan",
    "deletions_refused",
    "plan_download_sync",
    "plan_upload_sync",
    "run_sync",
    "sync",
]

#: Deleting up to this many files is never refused.
DELETE_FREE = 10
#: Deleting more than this share of the destination's files (and more than DELETE_FREE) needs force.
DELETE_SHARE = 0.10
#: Deleting more than this many files always needs force.
DELETE_MAX = 100
# A download's temporary file (see downloads.py): another run's resumable state, not the user's file.
_PART_FILE = re.compile(r"^\..*\.updl-[0-9a-f]{8}\.part$")


@dataclass(frozen=True)
class SyncPlan:
    """What a sync will do. ``upload``: the direction (local to remote, or back).

    ``transfers`` are the files whose content differs (or that are missing);
    ``unchanged`` and ``decided`` are outcomes known without transferring
    (skipped as unchanged; symlinks left out, unsafe names); ``deletions``
    are the destination's files the source does not have, of
    ``destination_files`` files there (after the patterns).
    """

    upload: bool
    prefix: str
    directory: Path
    transfers: list[Task] = field(default_factory=list)
    unchanged: list[Outcome] = field(default_factory=list)
    decided: list[Outcome] = field(default_factory=list)
    deletions: list[Task] = field(default_factory=list)
    destination_files: int = 0

    @property
    def verb(self) -> str:
        """``uploaded`` or ``downloaded``: what a transfer of this plan is called in its outcome."""
        return "uploaded" if self.upload else "downloaded"


def deletions_refused(deletions: int, destination_files: int) -> bool:
    """Whether deleting ``deletions`` of ``destination_files`` files needs ``force`` (see the module docstring)."""
    if deletions > DELETE_MAX:
        return True
    return deletions > DELETE_FREE and deletions > DELETE_SHARE * destination_files


def _local_md5s(paths: Sequence[Path], jobs: int) -> list[str | None]:
    """Each file's MD5, ``jobs`` at a time, streaming; ``None`` for one that cannot be read (it differs)."""

    def one(path: Path) -> str | None:
        try:
            return md5_of(path)
        except OSError:
            return None

    if jobs <= 1 or len(paths) <= 1:
        return [one(p) for p in paths]
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="updl-hash") as pool:
        return list(pool.map(one, paths))


def _remote_files(client: Client, prefix: str, include: Sequence[str], exclude: Sequence[str]) -> dict[str, FileInfo]:
    """The files below ``prefix`` the patterns keep, by their path below it."""
    found: dict[str, FileInfo] = {}
    for info in client.iter_files(prefix or None):
        relative = info.name[len(prefix) :]
        if relative and wanted(relative, include, exclude):
            found[relative] = info
    return found


def plan_upload_sync(
    client: Client,
    directory: str | os.PathLike[str],
    prefix: str | None,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    follow_symlinks: bool = False,
    jobs: int = 1,
) -> SyncPlan:
    """Plan ``directory`` -> ``prefix``: which files to upload, which are unchanged, which remote ones to delete."""
    prefix = normalize_prefix(prefix)
    root = Path(directory)
    unselected: list[Unselected] = []
    local = select_tree(
        root, include=include, exclude=exclude, follow_symlinks=follow_symlinks, on_unselected=unselected.append
    )
    remote = _remote_files(client, prefix, include, exclude)
    plan = SyncPlan(True, prefix, root, decided=unselected_outcomes(unselected, prefix))
    same_size = [s for s in local if s.relative in remote and remote[s.relative].size == s.size]
    digests = dict(zip((s.relative for s in same_size), _local_md5s([s.path for s in same_size], jobs), strict=True))
    for selected in local:
        task = Task(prefix + selected.relative, selected.path, selected.relative, selected.size)
        there = remote.get(selected.relative)
        md5 = digests.get(selected.relative)
        if there is not None and md5 is not None and md5 == there.md5:
            plan.unchanged.append(_unchanged(task, there, {"md5": md5}))
        else:
            plan.transfers.append(task)
    kept = {s.relative for s in local} | {u.relative for u in unselected}  # a left-out file is not "gone"
    plan.deletions.extend(
        Task(info.name, root / relative, relative, info.size, md5=info.md5)
        for relative, info in remote.items()
        if relative not in kept
    )
    return replace(plan, destination_files=len(remote))


def plan_download_sync(
    client: Client,
    prefix: str | None,
    directory: str | os.PathLike[str],
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    jobs: int = 1,
) -> SyncPlan:
    """Plan ``prefix`` -> ``directory``: which files to fetch, which local ones already match, which to delete."""
    prefix = normalize_prefix(prefix)
    root = Path(directory)
    remote = _remote_files(client, prefix, include, exclude)
    local = select_tree(root, include=include, exclude=exclude, on_unselected=lambda u: None) if root.is_dir() else []
    local = [s for s in local if not _PART_FILE.match(s.path.name)]
    sizes = {s.relative: s.size for s in local}
    plan = SyncPlan(False, prefix, root)
    candidates: list[tuple[Task, FileInfo]] = []
    for relative, info in remote.items():
        try:
            target = safe_destination(root, relative)
        except UnsafeNameError as error:
            task = Task(info.name, root / "?", relative, info.size)
            plan.decided.append(Outcome(task, "failed", size=info.size, md5=info.md5, error=error))
            continue
        task = Task(info.name, target, relative, info.size, md5=info.md5)
        if sizes.get(relative) == info.size:
            candidates.append((task, info))
        else:
            plan.transfers.append(task)
    digests = _local_md5s([task.path for task, _ in candidates], jobs)
    for (task, info), md5 in zip(candidates, digests, strict=True):
        if md5 is not None and md5 == info.md5:
            plan.unchanged.append(_unchanged(task, info, {"md5": md5}))
        else:
            plan.transfers.append(task)
    plan.deletions.extend(Task(s.relative, s.path, s.relative, s.size) for s in local if s.relative not in remote)
    return replace(plan, destination_files=len(local))


def _unchanged(task: Task, info: FileInfo, digests: dict[str, str]) -> Outcome:
    return Outcome(
        task,
        "skipped",
        size=info.size,
        md5=info.md5,
        digests=digests,
        reason="unchanged: same size and MD5",
        info=info,
    )


def _restore_attributes(outcomes: Iterable[Outcome]) -> None:
    """Give local files that already had the right content the mode and mtime the server recorded."""
    for outcome in outcomes:
        info = outcome.info
        if info is None or (info.mode is None and info.mtime is None):
            continue
        have = local_attributes(outcome.task.path)
        if have is None:
            continue
        mode = info.mode if info.mode is not None and have.mode != info.mode & PERMISSION_BITS else None
        mtime = info.mtime if info.mtime is not None and have.mtime != info.mtime.astimezone(UTC) else None
        if mode is None and mtime is None:
            continue
        try:
            with open(outcome.task.path, "rb") as file:
                apply_attributes(cast(BinaryIO, file), mode, mtime)
        except OSError:
            continue  # the content is right; a file we may not chmod keeps its mode


def run_sync(
    client: Client,
    plan: SyncPlan,
    *,
    delete: bool = False,
    force: bool = False,
    jobs: int = 1,
    retries: int | None = None,
    preserve: bool = True,
    on_start: Callable[[Task], None] | None = None,
    on_progress: ProgressCallback | None = None,
    on_retry: Callable[[RetryEvent], None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Carry out ``plan``: transfers ``jobs`` at a time, then (``delete``) the deletions; every outcome.

    Raises :class:`TooManyDeletionsError` before anything moves when the
    deletions need ``force``. Deletions happen only if no transfer failed;
    otherwise they are reported as skipped. A deletion's status is ``deleted``.
    """
    if delete and not force and deletions_refused(len(plan.deletions), plan.destination_files):
        raise TooManyDeletionsError(
            f"refusing to delete {len(plan.deletions)} of {plan.destination_files} files in the destination "
            f"(more than {DELETE_MAX}, or more than {DELETE_FREE} and {DELETE_SHARE:.0%}); check the paths, "
            "look at --dry-run, and add --force to delete them",
            [t.name for t in plan.deletions],
        )
    outcomes: list[Outcome] = []

    def record(outcome: Outcome) -> None:
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    for outcome in (*plan.decided, *plan.unchanged):
        record(outcome)
    if preserve and not plan.upload:
        _restore_attributes(plan.unchanged)
    callbacks: dict[str, Any] = {
        "jobs": jobs,
        "retries": retries,
        "on_start": on_start,
        "on_progress": on_progress,
        "on_retry": on_retry,
        "on_outcome": record,
    }
    if plan.transfers and plan.upload:
        upload_batch(
            client, plan.transfers, upload_options={"preserve": preserve}, dedup=client.settings.dedup, **callbacks
        )
    elif plan.transfers:
        download_batch(client, plan.transfers, preserve=preserve, **callbacks)
    if not delete or not plan.deletions:
        return outcomes
    failed = sum(1 for o in outcomes if o.failed)
    if failed:
        for task in plan.deletions:
            record(Outcome(task, "skipped", size=task.size, reason=f"not deleted: {failed} files failed"))
        return outcomes

    def remove(worker: Client, job: Job[Any]) -> Outcome:
        task = job.task
        # Deleted by someone else meanwhile (NotFoundError is a FileNotFoundError): gone either way.
        with contextlib.suppress(FileNotFoundError):
            if plan.upload:
                worker.delete(task.name, on_retry=job.on_retry)
            else:
                os.unlink(task.path)
        return Outcome(task, "deleted", size=task.size, md5=task.md5, attempts=job.attempts)

    run_batch(client, plan.deletions, remove, jobs=jobs, on_outcome=record)
    return outcomes


def sync(
    client: Client,
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    upload: bool,
    delete: bool = False,
    force: bool = False,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    jobs: int = 1,
    preserve: bool = True,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Plan and run a sync in one call: ``upload=True`` sends directory ``source`` to prefix ``destination``,
    ``upload=False`` fetches prefix ``source`` into directory ``destination``. See :func:`run_sync`."""
    if upload:
        plan = plan_upload_sync(client, source, os.fspath(destination), include=include, exclude=exclude, jobs=jobs)
    else:
        plan = plan_download_sync(client, os.fspath(source), destination, include=include, exclude=exclude, jobs=jobs)
    return run_sync(client, plan, delete=delete, force=force, jobs=jobs, preserve=preserve, on_outcome=on_outcome)
