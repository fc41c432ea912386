"""Bounded waits on observable conditions, for tests that watch another process or thread."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

WAIT_TIMEOUT = 30.0


def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT_TIMEOUT) -> None:
    """Poll ``condition`` until it holds; fail the test after ``timeout`` seconds.

    A bounded wait on an observable condition, never a sleep standing in for synchronisation.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)
