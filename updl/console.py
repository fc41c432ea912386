"""Rendering for the CLI: transfer progress, retries, results. The SDK never sees any of this.

Three transfer views share one small interface (:class:`TransferView`):
rich bars on a terminal, plain throttled lines in a log (no carriage
returns), and nothing at all with ``--quiet``. Views write to stderr only;
results (a line per file, the summary) go to stdout through
:mod:`updl.reporting`, so ``updl put ... > results.txt`` keeps just them. Batches (``--jobs N``) call the
views from worker threads, so every view serialises its methods with a lock;
on a terminal a batch also gets one overall bar.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from .sdk.attributes import format_mode
from .sdk.config import format_size
from .sdk.models import FileInfo, Prefix, Usage, format_time
from .sdk.progress import ProgressEvent
from .sdk.retry import RetryEvent

__all__ = [
    "PlainView",
    "QuietView",
    "RichView",
    "TransferView",
    "files_table",
    "human_size",
    "info_lines",
    "json_line",
    "result_line",
]

PREFIX = "updl: "


def human_size(size: int | None, unit_of: int | None = None) -> str:
    """:func:`~updl.sdk.config.format_size` (binary units, e.g. ``5.0 MiB``), or ``?`` for an unknown size."""
    return "?" if size is None else format_size(size, unit_of)


def _size_pair(done: int, total: int) -> str:
    """``2.0/5.0 MiB``: both in the unit of the total."""
    whole = human_size(total)
    number, _, unit = whole.partition(" ")
    part = human_size(done, unit_of=total).partition(" ")[0]
    return f"{part}/{number} {unit}"


def json_line(data: dict[str, Any]) -> str:
    """One compact JSON object, for ``--json`` output (one result per line)."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def files_table(files: Iterable[FileInfo | Prefix]) -> Table:
    """The ``ls`` table: name, size, md5, created (a folder: its name, ending in ``/``, alone)."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("NAME", overflow="fold")
    table.add_column("SIZE", justify="right", no_wrap=True)
    table.add_column("MD5", no_wrap=True)
    table.add_column("CREATED", no_wrap=True)
    for info in files:
        if isinstance(info, Prefix):
            table.add_row(info.name, "", "", "")
        else:
            table.add_row(info.name, human_size(info.size), info.md5, _short_time(info))
    return table


def totals_line(files: int, size: int, folders: int | None = None) -> str:
    """``3 files, 1.5 KiB (1536 bytes)``, and ``, 2 folders`` in a folder-style listing."""
    line = f"{files} file{'s' if files != 1 else ''}, {human_size(size)} ({size} bytes)"
    if folders is not None:
        line += f", {folders} folder{'s' if folders != 1 else ''}"
    return line


def _short_time(info: FileInfo) -> str:
    return format_time(info.created.replace(microsecond=0)).replace("T", " ")


def info_lines(info: FileInfo) -> list[str]:
    """The ``info`` fields, one per line."""
    accessed = format_time(info.last_accessed) if info.last_accessed else "never"
    return [
        f"name:          {info.name}",
        f"size:          {human_size(info.size)} ({info.size} bytes)",
        f"md5:           {info.md5}",
        f"created:       {format_time(info.created)}",
        f"last accessed: {accessed}",
        f"expires:       {format_time(info.expires) if info.expires else 'never'}",
        f"mode:          {format_mode(info.mode) if info.mode is not None else 'not recorded'}",
        f"mtime:         {format_time(info.mtime) if info.mtime else 'not recorded'}",
    ]


def quota_lines(usage: Usage) -> list[str]:
    """``updl du``'s lines about the quota: usage against each limit the user has, and the retention."""
    lines = []
    if usage.quota_bytes is not None and usage.used_bytes is not None:
        share = f" ({100 * usage.used_bytes / usage.quota_bytes:.0f}%)" if usage.quota_bytes else ""
        lines.append(f"quota: {human_size(usage.used_bytes)} of {human_size(usage.quota_bytes)} used{share}")
    if usage.quota_files is not None and usage.used_files is not None:
        lines.append(f"quota: {usage.used_files} of {usage.quota_files} files")
    if usage.retention_seconds is not None:
        lines.append(f"retention: files are deleted {usage.retention_seconds}s after upload unless put --expires says")
    return lines


def _resuming(event: ProgressEvent) -> str:
    """``resuming at 12.0 MiB``: a transfer's first event past 0 means an earlier run's bytes count."""
    return f"resuming at {human_size(event.transferred)}"


def _retry_text(event: RetryEvent) -> str:
    return (
        f"{event.name}: {event.error}, retrying (attempt {event.next_attempt} of "
        f"{event.max_attempts}) in {event.delay:.1f}s"
    )


def result_line(verb: str, info: FileInfo, elapsed: float, dest: str | None) -> str:
    """The human result line of one transfer (printed on stdout)."""
    where = f" to {dest}" if dest else ""
    return f"{verb} {info.name}{where} {human_size(info.size)} in {elapsed:.1f}s, md5 {info.md5}"


class TransferView(Protocol):
    """What the CLI tells the user about transfers. Methods are called in the SDK's callbacks."""

    def begin(self, name: str, verb: str) -> None:
        """A transfer of ``name`` starts; ``verb`` is ``uploading`` or ``downloading``."""

    def progress(self, event: ProgressEvent) -> None:
        """An SDK progress event (absolute counts)."""

    def retry(self, event: RetryEvent) -> None:
        """An SDK retry event."""

    def done(self, info: FileInfo, verb: str, dest: str | None = None) -> None:
        """The transfer finished; ``verb`` is ``uploaded`` or ``downloaded`` (its result line is not the view's)."""

    def note(self, message: str) -> None:
        """A status line (e.g. ``deleted NAME``)."""

    def plan(self, files: int, total: int) -> None:
        """A batch of ``files`` files, ``total`` bytes, is about to start."""

    def skipped(self, name: str, size: int | None, reason: str) -> None:
        """``name`` is not transferred (e.g. unchanged on the server); its result line is not the view's."""

    def failed(self, name: str, message: str) -> None:
        """The transfer of ``name`` failed; the batch goes on."""

    def close(self) -> None:
        """No more transfers."""


class QuietView:
    """``--quiet``: says nothing; errors are still reported by the CLI."""

    def begin(self, name: str, verb: str) -> None: ...
    def progress(self, event: ProgressEvent) -> None: ...
    def retry(self, event: RetryEvent) -> None: ...
    def done(self, info: FileInfo, verb: str, dest: str | None = None) -> None: ...
    def note(self, message: str) -> None: ...
    def plan(self, files: int, total: int) -> None: ...
    def skipped(self, name: str, size: int | None, reason: str) -> None: ...
    def failed(self, name: str, message: str) -> None: ...
    def close(self) -> None: ...


@dataclass
class _Transfer:
    verb: str
    started: float
    announced: bool = False
    last_line: float = 0.0


@dataclass
class PlainView:
    """For logs: a start line, a progress line at most every ``interval`` seconds per file, an end line.

    Never writes a carriage return. ``clock`` is injectable so tests need not sleep.
    """

    stream: IO[str]
    clock: Callable[[], float] = time.monotonic
    interval: float = 5.0
    _transfers: dict[str, _Transfer] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def _line(self, text: str) -> None:
        with self._lock:
            self.stream.write(PREFIX + text + "\n")
            self.stream.flush()

    def begin(self, name: str, verb: str) -> None:
        with self._lock:
            self._transfers[name] = _Transfer(verb, self.clock())

    def progress(self, event: ProgressEvent) -> None:
        with self._lock:
            self._progress(event)

    def _progress(self, event: ProgressEvent) -> None:
        transfer = self._transfers.setdefault(event.name, _Transfer("transferring", self.clock()))
        now = self.clock()
        if not transfer.announced:
            # The first event carries the size (a download learns it from the response).
            size = f" ({human_size(event.total)})" if event.total is not None else ""
            resumed = f", {_resuming(event)}" if event.transferred > 0 else ""
            self._line(f"{transfer.verb} {event.name}{size}{resumed}")
            transfer.announced = True
            transfer.last_line = now
            return
        if now - transfer.last_line < self.interval:
            return
        if event.total:
            percent = 100 * event.transferred // event.total
            self._line(f"{event.name} {percent}% {_size_pair(event.transferred, event.total)}")
        else:
            self._line(f"{event.name} {human_size(event.transferred)}")
        transfer.last_line = now

    def retry(self, event: RetryEvent) -> None:
        self._line(_retry_text(event))

    def done(self, info: FileInfo, verb: str, dest: str | None = None) -> None:
        with self._lock:
            self._transfers.pop(info.name, None)

    def note(self, message: str) -> None:
        self._line(message)

    def plan(self, files: int, total: int) -> None:
        pass  # a log needs no overall bar: the summary line says it all

    def skipped(self, name: str, size: int | None, reason: str) -> None:
        pass  # nothing was in progress; the result line says it

    def failed(self, name: str, message: str) -> None:
        with self._lock:
            self._transfers.pop(name, None)
            self._line(f"failed {name}: {message}")

    def close(self) -> None:
        with self._lock:
            self._transfers.clear()


class _SizeColumn(ProgressColumn):
    """``2.0/5.0 MiB`` in updl's one size format (rich's own column counts in 1000s)."""

    def render(self, task: Any) -> Text:
        done = int(task.completed)
        text = _size_pair(done, int(task.total)) if task.total is not None else human_size(done)
        return Text(text, style="progress.download")


class _SpeedColumn(ProgressColumn):
    """``12.3 MiB/s``, in the same units as the sizes."""

    def render(self, task: Any) -> Text:
        speed = task.finished_speed or task.speed
        return Text("?" if speed is None else f"{human_size(int(speed))}/s", style="progress.data.speed")


class RichView:
    """For a terminal: one rich bar per file on stderr, status lines above the bars; a batch adds an overall bar."""

    def __init__(
        self, console: Console, clock: Callable[[], float] = time.monotonic, stdout_on_terminal: bool = False
    ) -> None:
        """``stdout_on_terminal``: stdout is a terminal too, so result lines written there while the
        bars are drawn must be printed above them (rich's redirect); when stdout is a file or pipe
        they must go straight there, not onto the terminal."""
        self.console = console
        self.clock = clock
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            _SizeColumn(),
            _SpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            redirect_stdout=stdout_on_terminal,
        )
        self._tasks: dict[str, tuple[TaskID, float]] = {}
        self._started = False
        self._lock = threading.RLock()
        self._overall: TaskID | None = None
        self._positions: dict[str, int] = {}
        self._fresh: set[str] = set()  # begun, no progress event yet

    def _start(self) -> None:
        if not self._started:
            self._progress.start()
            self._started = True

    def _print(self, text: str) -> None:
        self._progress.console.print(PREFIX + text, markup=False, highlight=False)

    def _set_overall(self, name: str, position: int | None) -> None:
        if self._overall is None:
            return
        if position is None:
            self._positions.pop(name, None)
        else:
            self._positions[name] = position
        self._progress.update(self._overall, completed=sum(self._positions.values()))

    def plan(self, files: int, total: int) -> None:
        with self._lock:
            if files > 1:
                self._start()
                self._overall = self._progress.add_task(f"total ({files} files)", total=total)

    def begin(self, name: str, verb: str) -> None:
        with self._lock:
            self._start()
            task = self._progress.add_task(name, total=None)
            self._tasks[name] = (task, self.clock())
            self._fresh.add(name)

    def progress(self, event: ProgressEvent) -> None:
        with self._lock:
            entry = self._tasks.get(event.name)
            if event.name in self._fresh:
                self._fresh.discard(event.name)
                if event.transferred > 0:
                    self._print(f"{event.name}: {_resuming(event)}")
            if entry is not None:
                # Absolute: a retry sets the bar back to 0.
                self._progress.update(entry[0], completed=event.transferred, total=event.total)
                self._set_overall(event.name, event.transferred)

    def retry(self, event: RetryEvent) -> None:
        with self._lock:
            self._print(_retry_text(event))

    def done(self, info: FileInfo, verb: str, dest: str | None = None) -> None:
        with self._lock:
            entry = self._tasks.pop(info.name, None)
            if entry is not None:
                if self._overall is not None:
                    self._progress.remove_task(entry[0])  # a batch keeps only running bars
                else:
                    self._progress.update(entry[0], completed=info.size, total=info.size)
            self._set_overall(info.name, info.size)

    def note(self, message: str) -> None:
        with self._lock:
            self._print(message)

    def skipped(self, name: str, size: int | None, reason: str) -> None:
        with self._lock:
            self._set_overall(name, size or 0)

    def failed(self, name: str, message: str) -> None:
        with self._lock:
            entry = self._tasks.pop(name, None)
            if entry is not None:
                self._progress.remove_task(entry[0])
            self._set_overall(name, None)
            self._print(f"failed {name}: {message}")

    def close(self) -> None:
        with self._lock:
            if self._started:
                self._progress.stop()
                self._started = False
