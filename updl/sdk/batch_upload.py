"""Uploading many files: plan (names below a prefix), skip unchanged ones, upload, collect digests.

Digests for a manifest come from the same read that uploads the file: the MD5
is the one the server verified, and a SHA-256 is computed by wrapping the
file in :class:`DigestingFile` (and replaced by the one the server verified,
when it reports one). Only ``skip_existing`` and ``dedup`` read a file before
sending it (its digests must be known to ask the server), and that read computes
every digest needed, so the upload pass adds nothing.

With ``dedup`` a file of at least :data:`~updl.sdk.dedup.DEDUP_THRESHOLD`
is offered by content first (:meth:`Client.link`); content the server holds
for this user is linked under the new name (status ``linked``, no byte sent),
otherwise the upload claims the SHA-256 just computed and the server verifies it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, BinaryIO, cast

from .attributes import local_attributes
from .batch import Job, Outcome, Task, run_batch
from .client import Client
from .dedup import DEDUP_THRESHOLD
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
    dedup: bool = False,
) -> Outcome:
    task = job.task
    digests: dict[str, str] = {}
    offering = dedup and task.size is not None and task.size >= DEDUP_THRESHOLD
    if skip_existing or offering:
        wanted = {*algorithms, *(("md5",) if skip_existing else ()), *(("sha256",) if offering else ())}
        digests = digest_file(task.path, wanted)
    if skip_existing:
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
    if offering:
        terms = {k: v for k, v in options.items() if k in ("no_clobber", "if_match", "expires_in")}
        attributes = local_attributes(task.path) if options.get("preserve", True) else None
        linked = client.link(
            task.name, task.size or 0, digests["sha256"], digests.get("md5"), attributes=attributes, **terms
        )
        if linked is not None:
            digests["md5"] = linked.md5  # its sha256 is the one offered
            return Outcome(
                task, "linked", size=linked.size, md5=linked.md5, digests=digests, reason="no bytes sent", info=linked
            )
    job.on_start()
    extra = [a for a in algorithms if a != "md5" and a not in digests]
    kwargs: dict[str, Any] = {**options, "on_progress": job.on_progress, "on_retry": job.on_retry, "retries": retries}
    kwargs |= {"dedup": False, "sha256": digests.get("sha256")}
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
    if info.sha256 is not None:
        digests["sha256"] = info.sha256  # the digest the server computed (and verified, if claimed)
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
    dedup: bool = False,
) -> list[Outcome]:
    """Upload every task; ``algorithms`` lists digests wanted besides MD5 (for a manifest).

    ``upload_options`` are passed on to :meth:`Client.upload` (e.g. ``resumable_threshold``).

    With ``skip_existing`` each file is hashed first and not sent when the
    server already has that name with the same MD5 (status ``skipped``).
    With ``dedup`` big files are offered by content first (status ``linked``
    when the server links the name; see the module docstring).
    """

    def work(worker: Client, job: Job[Any]) -> Outcome:
        return _upload(
            worker,
            job,
            algorithms=algorithms,
            skip_existing=skip_existing,
            retries=retries,
            options=upload_options or {},
            dedup=dedup,
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
