"""Uploading many files: plan (names below a prefix), skip unchanged ones, upload, collect digests.

Digests for a manifest come from the same read that uploads the file: the MD5
is the one the server verified, and a SHA-256 is computed by wrapping the
file in :class:`DigestingFile`. Only ``skip_existing`` reads a file before
sending it (its MD5 must be known to ask the server), and that read computes
every digest needed, so the upload pass adds nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, BinaryIO, cast

from .batch import Job, Outcome, Task, run_batch
from .client import Client
from .errors import SourceChangedError
from .hashing import DigestingFile, digest_file
from .progress import ProgressCallback
from .retry import RetryEvent
from .selection import Selected, Unselected, join_prefix

__all__ = ["plan_uploads", "unselected_outcomes", "upload_batch"]


def plan_uploads(selected: Sequence[Selected], prefix: str | None) -> list[Task]:
    """One task per selected file, stored as ``prefix`` + its relative path."""
    return [Task(join_prefix(prefix, s.relative), s.path, s.relative, s.size) for s in selected]


def unselected_outcomes(unselected: Sequence[Unselected], prefix: str | None) -> list[Outcome]:
    """The outcome of each path the selection left out, decided without sending anything:
    ``failed`` (with the error) for a named file that is missing or a directory that cannot be
    read, ``skipped`` (with the reason) for the rest: symlinks not followed, loops, FIFOs."""
    return [
        Outcome(
            Task(join_prefix(prefix, u.relative), u.path, u.relative),
            "failed" if u.error is not None else "skipped",
            error=u.error,
            reason=None if u.error is not None else u.reason,
        )
        for u in unselected
    ]


def _upload(
    client: Client,
    job: Job[Any],
    *,
    algorithms: Sequence[str],
    skip_existing: bool,
    retries: int | None,
    options: Mapping[str, Any],
) -> Outcome:
    task = job.task
    digests: dict[str, str] = {}
    if skip_existing:
        digests = digest_file(task.path, {"md5", *algorithms})
        remote = client.head(task.name)
        if remote is not None and remote.md5 == digests["md5"]:
            return Outcome(
                task,
                "skipped",
                size=remote.size,
                md5=remote.md5,
                digests=digests,
                reason="unchanged: the server has the same MD5",
            )
    job.on_start()
    extra = [a for a in algorithms if a != "md5" and a not in digests]
    kwargs: dict[str, Any] = {**options, "on_progress": job.on_progress, "on_retry": job.on_retry, "retries": retries}
    if not extra:
        info = client.upload(task.path, task.name, **kwargs)
    else:
        with open(task.path, "rb") as f:
            reader = DigestingFile(cast(BinaryIO, f), extra[0])
            info = client.upload(cast(BinaryIO, reader), task.name, **kwargs)
        if reader.complete(info.size):
            digests[extra[0]] = reader.hexdigest()
        else:
            # The transfer did not read the file front to back (a resumable upload): hash it apart.
            digests.update(digest_file(task.path, {"md5", extra[0]}))
    if digests.get("md5", info.md5) != info.md5:
        raise SourceChangedError(
            f"{task.path} changed while being uploaded (md5 {digests['md5']} "
            f"when read, {info.md5} when sent); upload it again"
        )
    digests["md5"] = info.md5
    return Outcome(task, "uploaded", size=info.size, md5=info.md5, digests=digests, attempts=job.attempts, info=info)


def upload_batch(
    client: Client,
    tasks: Sequence[Task],
    *,
    jobs: int = 1,
    skip_existing: bool = False,
    algorithms: Sequence[str] = (),
    retries: int | None = None,
    on_start: Callable[[Task], None] | None = None,
    on_progress: ProgressCallback | None = None,
    on_retry: Callable[[RetryEvent], None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    upload_options: Mapping[str, Any] | None = None,
) -> list[Outcome]:
    """Upload every task; ``algorithms`` lists digests wanted besides MD5 (for a manifest).

    ``upload_options`` are passed on to :meth:`Client.upload` (e.g. ``resumable_threshold``).

    With ``skip_existing`` each file is hashed first and not sent when the
    server already has that name with the same MD5 (status ``skipped``).
    """

    def work(worker: Client, job: Job[Any]) -> Outcome:
        return _upload(
            worker,
            job,
            algorithms=algorithms,
            skip_existing=skip_existing,
            retries=retries,
            options=upload_options or {},
        )

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
