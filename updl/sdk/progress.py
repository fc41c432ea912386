"""Progress reporting: an event with absolute byte counts, and an optional tqdm adapter.

Transfer code only calls a :data:`ProgressCallback`; it never builds a bar.
``transferred`` is absolute: when a retry restarts a transfer it goes back to
0, so a renderer just sets its value and never accumulates.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["ProgressCallback", "ProgressEvent", "TqdmProgress", "reporting", "tqdm_progress"]


@dataclass(frozen=True)
class ProgressEvent:
    """``transferred`` of ``total`` bytes (``None`` if unknown) of ``name`` moved in attempt ``attempt``."""

    name: str
    transferred: int
    total: int | None
    attempt: int = 1


ProgressCallback = Callable[[ProgressEvent], None]


# tqdm's default layout with our sizes as the postfix (which tqdm prefixes with ", ").
BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]"
BAR_FORMAT_NO_TOTAL = "{desc}: [{elapsed}{postfix}]"


def _sizes(done: int, total: int | None, rate: float | None) -> str:
    """``2.0/5.0 MiB, 1.2 MiB/s``."""
    from .config import format_size

    if total is None:
        text = format_size(done)
    else:
        number, _, unit = format_size(total).partition(" ")
        text = f"{format_size(done, unit_of=total).partition(' ')[0]}/{number} {unit}"
    return text + (f", {format_size(int(rate))}/s" if rate else "")


class TqdmProgress:
    """A progress callback drawing one tqdm bar; call :meth:`close` when the transfer ends."""

    def __init__(self, desc: str, **tqdm_kwargs: Any) -> None:
        self.desc = desc
        self._kwargs = tqdm_kwargs
        self._bar: Any = None

    def __call__(self, event: ProgressEvent) -> None:
        if self._bar is None:
            from tqdm.auto import tqdm  # type: ignore[import-untyped]  # imported here so the SDK never needs a UI library

            # Sizes through updl's format_size: tqdm's own scaling writes "20.0M" for MiB and
            # counts the rate in 1000s, so its numbers would disagree with the CLI's.
            self._bar = tqdm(
                desc=self.desc,
                total=event.total,
                unit="B",
                bar_format=BAR_FORMAT if event.total is not None else BAR_FORMAT_NO_TOTAL,
                postfix=_sizes(event.transferred, event.total, None),
                **self._kwargs,
            )
        if event.total is not None and self._bar.total != event.total:
            self._bar.total = event.total
            self._bar.bar_format = BAR_FORMAT
        self._bar.set_postfix_str(
            _sizes(event.transferred, event.total, self._bar.format_dict.get("rate")), refresh=False
        )
        # Absolute position: move the bar to it (a retry moves it back to 0). update()
        # rather than assigning n, so tqdm's redraw throttling still applies.
        self._bar.update(event.transferred - self._bar.n)

    def close(self) -> None:
        """Close the bar (if one was drawn)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def tqdm_progress(desc: str, **tqdm_kwargs: Any) -> TqdmProgress:
    """A :data:`ProgressCallback` that draws a tqdm bar titled ``desc``."""
    return TqdmProgress(desc, **tqdm_kwargs)


@contextlib.contextmanager
def reporting(on_progress: ProgressCallback | None, progress: bool, desc: str) -> Iterator[ProgressCallback]:
    """The callback a transfer reports to: ``on_progress`` and, if ``progress``, a tqdm bar closed at the end."""
    bar = tqdm_progress(desc) if progress else None

    def report(event: ProgressEvent) -> None:
        if on_progress is not None:
            on_progress(event)
        if bar is not None:
            bar(event)

    try:
        yield report
    finally:
        if bar is not None:
            bar.close()
