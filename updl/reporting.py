"""How the CLI reports a batch: a result per file on stdout (a human line, or ``--json``) and a summary.

Called with each :class:`~updl.sdk.batch.Outcome` as it completes; the
summary comes last. Results go to stdout, like ``gh`` and rclone's listings;
progress, retries, warnings and errors go to stderr (a failed file's line
too: it is an error message). ``--quiet`` drops the human result lines, not
the ``--json`` ones. A one-file batch stays as terse as a single transfer:
no per-file failure line (the error line says it) and no human summary (the
``--json`` summary is always printed, so parsers can rely on it).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import click

from .console import TransferView, human_size, json_line, result_line
from .exitcodes import describe
from .sdk.batch import Outcome, Task
from .sdk.errors import NoFilesError

__all__ = ["BatchReport", "message_of"]

DONE = ("uploaded", "downloaded")


def message_of(error: BaseException) -> str:
    """The same one-line message the CLI prints for ``error`` on its own."""
    described = describe(error)
    return described[1] if described else f"{type(error).__name__}: {error}"


def _stdout_line(text: str, stdout: TextIO | None = None) -> None:
    # sys.stdout looked up now, not click.echo: while bars are drawn on a terminal that is also
    # stdout, rich has replaced sys.stdout to print lines above the bars (click.echo would
    # unwrap that to the raw stream and tear the bars).
    stream = stdout if stdout is not None else sys.stdout
    stream.write(text + "\n")
    stream.flush()


@dataclass
class BatchReport:
    """Renders a batch's outcomes through ``view`` (human) or as JSON lines on stdout."""

    view: TransferView
    json: bool
    verb: str  # "uploaded" or "downloaded"
    files: int
    clock: Callable[[], float] = time.monotonic
    quiet: bool = False
    stdout: TextIO | None = None  # None: sys.stdout as it is when a line is written
    stderr: TextIO | None = None
    started: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def emit(self, data: dict[str, Any]) -> None:
        """One JSON line on stdout."""
        _stdout_line(json_line(data), self.stdout)

    def result(self, text: str) -> None:
        """One human result line on stdout (none with ``--json`` or ``--quiet``)."""
        if not self.json and not self.quiet:
            _stdout_line(text, self.stdout)

    def outcome(self, outcome: Outcome) -> None:
        """Report one file's outcome."""
        if self.json:
            self.emit(outcome.to_json(message_of))
        if outcome.status in DONE and outcome.info is not None:
            dest = str(outcome.task.path) if outcome.status == "downloaded" else None
            self.view.done(outcome.info, outcome.status, dest)
            self.result(result_line(outcome.status, outcome.info, outcome.seconds, dest))
        elif outcome.status == "linked" and outcome.info is not None:
            self.view.skipped(outcome.task.name, outcome.size, "linked")
            self.result(f"linked {outcome.task.name} (no bytes sent)")
        elif outcome.status == "skipped":
            self.view.skipped(outcome.task.name, outcome.size, outcome.reason or "skipped")
            self.result(f"skipped {outcome.task.name} ({outcome.reason or 'skipped'})")
        elif outcome.error is not None and self.files > 1:
            self.view.failed(outcome.task.name, message_of(outcome.error))

    def summary(self, outcomes: Sequence[Outcome], **extra: Any) -> None:
        """The last line: counts, bytes moved, seconds."""
        counts = {self.verb: 0, "skipped": 0, "failed": 0}
        for outcome in outcomes:
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        moved = sum(o.size or 0 for o in outcomes if o.status == self.verb)
        seconds = self.clock() - self.started
        if self.json:
            self.emit({"summary": {**counts, "bytes": moved, "seconds": round(seconds, 3), **extra}})
        elif self.files > 1 or extra:
            parts = [f"{n} {status}" for status, n in counts.items() if n or status == self.verb]
            self.result(f"{', '.join(parts)}; {human_size(moved)} in {seconds:.1f}s")

    def dry_run(self, tasks: Sequence[Task]) -> None:
        """List what would be sent (remote name, size, local path); nothing is sent."""
        total = sum(t.size or 0 for t in tasks)
        for task in tasks:
            if self.json:
                self.emit({"name": task.name, "path": str(task.path), "size": task.size, "status": "planned"})
            else:
                click.echo(
                    f"would {self.verb[:-2]} {task.path} -> {task.name} ({human_size(task.size)})", file=self.stdout
                )
        if self.json:
            self.emit({"summary": {"planned": len(tasks), "bytes": total, "dry_run": True}})
        else:
            self.result(f"dry run: would {self.verb[:-2]} {len(tasks)} files, {human_size(total)}; nothing was sent")

    def no_files(self, policy: str, what: str, skipped: Sequence[Outcome] = ()) -> None:
        """Nothing to transfer: raise (``fail``), or say so (``warn``) and report an empty batch
        (but for the ``skipped`` outcomes already reported)."""
        if policy == "fail":
            raise NoFilesError(f"no files to {self.verb[:-2]}: {what} (use --if-no-files warn|ignore to allow this)")
        if policy == "warn":
            click.echo(f"updl: warning: no files to {self.verb[:-2]}: {what}", file=self.stderr, err=True)
        if self.json:
            self.summary(skipped)
