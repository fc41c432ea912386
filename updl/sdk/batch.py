"""Many transfers at once: each file gets an :class:`Outcome`; one failure does not stop the others.

``jobs`` worker threads each use their own :meth:`Client.clone` (a
``requests.Session`` is not guaranteed thread-safe). An error that would fail
every later file too (bad token, server unreachable, bad settings) stops new
transfers from starting; those files are reported as not attempted. Ctrl-C
cancels running transfers at their next progress event. Callbacks
(``on_start``, ``on_progress``, ``on_retry``) run in worker threads;
``on_outcome`` runs in the calling thread, in completion order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

from .client import Client
from .errors import (
    AuthenticationError,
    BatchFailedError,
    ChecksumMismatchError,
    ConnectionFailedError,
    InvalidSettingsError,
    PartialFailureError,
    UpdlError,
)
from .models import FileInfo
from .progress import ProgressCallback, ProgressEvent
from .retry import RetryEvent

__all__ = ["FATAL_ERRORS", "Job", "Outcome", "Task", "raise_for_outcomes", "run_batch"]

#: Errors after which no further transfer is started.
FATAL_ERRORS: tuple[type[BaseException], ...] = (AuthenticationError, ConnectionFailedError, InvalidSettingsError)

T = TypeVar("T")


class _Cancelled(BaseException):
    """Raised from a progress callback to stop a running transfer (Ctrl-C); BaseException so no retry catches it."""


@dataclass(frozen=True)
class Task:
    """One planned transfer: remote ``name``, local ``path``, ``relative`` path (manifest), ``size`` if known.

    ``expected`` maps an algorithm to the digest the file must have (from a manifest);
    ``md5`` is the server's MD5 when the listing told it (downloads).
    """

    name: str
    path: Path
    relative: str
    size: int | None = None
    expected: dict[str, str] = field(default_factory=dict)
    md5: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What happened to one file. ``status``: uploaded, linked (by content, no byte sent), downloaded,
    skipped or failed."""

    task: Task
    status: str
    size: int | None = None
    md5: str | None = None
    digests: dict[str, str] = field(default_factory=dict)
    attempts: int = 0
    seconds: float = 0.0
    error: BaseException | None = None
    reason: str | None = None
    info: FileInfo | None = None

    @property
    def failed(self) -> bool:
        """Whether the file failed."""
        return self.status == "failed"

    def to_json(self, describe: Callable[[BaseException], str] = str) -> dict[str, Any]:
        """The ``--json`` line for this file; ``describe`` turns the error into a message."""
        data: dict[str, Any] = self.info.to_json() if self.info is not None else {}
        data |= {
            "name": self.task.name,
            "path": str(self.task.path),
            "size": self.size,
            "md5": self.md5,
            "status": self.status,
            "attempts": self.attempts,
            "seconds": round(self.seconds, 3),
        }
        data.update({k: v for k, v in self.digests.items() if k != "md5"})
        if self.reason:
            data["reason"] = self.reason
        if self.error is not None:
            data["error"] = describe(self.error)
        return data


@dataclass
class Job(Generic[T]):
    """Per-file context handed to the work function: callbacks already bound to this file, and an attempt count."""

    task: Task
    on_progress: ProgressCallback
    on_retry: Callable[[RetryEvent], None]
    on_start: Callable[[], None]
    attempts: int = 1


Work = Callable[[Client, Job[Any]], Outcome]


def _failed(task: Task, error: BaseException, seconds: float = 0.0, attempts: int | None = None) -> Outcome:
    tries = attempts if attempts is not None else getattr(error, "attempts", 1)
    return Outcome(task, "failed", size=task.size, attempts=tries, seconds=seconds, error=error)


def _not_attempted(task: Task, cause: BaseException) -> Outcome:
    error = type(cause)(f"not attempted: {cause}") if isinstance(cause, UpdlError) else cause
    return Outcome(task, "failed", size=task.size, attempts=0, error=error)


def run_batch(
    client: Client,
    tasks: Sequence[Task],
    work: Work,
    *,
    jobs: int = 1,
    on_start: Callable[[Task], None] | None = None,
    on_progress: ProgressCallback | None = None,
    on_retry: Callable[[RetryEvent], None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> list[Outcome]:
    """Run ``work`` for every task, ``jobs`` at a time; return the outcomes in completion order."""
    halted: list[BaseException] = []
    cancel = threading.Event()
    local = threading.local()
    clones: list[Client] = []
    clones_lock = threading.Lock()

    def one(task: Task, worker_client: Client | None) -> Outcome:
        if halted:
            return _not_attempted(task, halted[0])
        if worker_client is None:
            worker_client = getattr(local, "client", None)
            if worker_client is None:
                worker_client = local.client = client.clone()
                with clones_lock:
                    clones.append(worker_client)

        def progress(event: ProgressEvent) -> None:
            if cancel.is_set():
                raise _Cancelled()
            if on_progress is not None:
                on_progress(event)

        job: Job[Any] = Job(task, progress, lambda e: None, lambda: on_start(task) if on_start else None)

        def retry(event: RetryEvent) -> None:
            job.attempts = event.next_attempt
            if on_retry is not None:
                on_retry(event)

        job.on_retry = retry
        started = clock()
        try:
            outcome = work(worker_client, job)
        except (UpdlError, OSError) as error:
            return _failed(task, error, clock() - started)
        return replace(outcome, seconds=clock() - started)

    outcomes: list[Outcome] = []

    def record(outcome: Outcome) -> None:
        if outcome.failed and isinstance(outcome.error, FATAL_ERRORS) and not halted:
            halted.append(outcome.error)
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    if jobs <= 1:
        for task in tasks:
            record(one(task, client))
        return outcomes
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="updl")
    futures = [pool.submit(one, task, None) for task in tasks]
    try:
        for future in as_completed(futures):
            record(future.result())
    except BaseException:
        halted.append(KeyboardInterrupt("interrupted"))
        cancel.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for clone in clones:
            clone.close()
    return outcomes


def raise_for_outcomes(outcomes: Sequence[Outcome]) -> None:
    """Raise when any file failed, so that the exit code tells what happened.

    A checksum mismatch anywhere wins (the batch is not intact); then an error
    that stopped the batch; then, when every file failed, :class:`BatchFailedError`
    (one error alone is raised as itself); otherwise :class:`PartialFailureError`.
    """
    failures = [o for o in outcomes if o.failed and o.error is not None]
    if not failures:
        return
    errors = [o.error for o in failures if o.error is not None]
    summary = f"{len(failures)} of {len(outcomes)} files failed"
    if len(outcomes) == 1:
        raise errors[0]
    mismatches = [o for o in failures if isinstance(o.error, ChecksumMismatchError)]
    if mismatches:
        first = mismatches[0]
        raise ChecksumMismatchError(
            f"{summary}; {len(mismatches)} failed verification, first {first.task.name}: {first.error}"
        )
    fatal = [o.error for o in failures if isinstance(o.error, FATAL_ERRORS) and o.attempts > 0]
    if fatal:
        raise fatal[0]
    if len(failures) == len(outcomes):
        raise BatchFailedError(summary, errors)
    raise PartialFailureError(summary, errors)
