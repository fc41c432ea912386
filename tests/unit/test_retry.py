"""RetryPolicy and the retry loop."""

from __future__ import annotations

import random

import pytest

from updl import ChecksumMismatchError, RetryPolicy, ServerError, TooLargeError
from updl.sdk.retry import RetryEvent, run_with_retries
from updl.sdk.transport import parse_retry_after

from .conftest import SleepRecorder


def test_full_jitter_bounds() -> None:
    policy = RetryPolicy(retries=10, backoff_base=0.5, backoff_cap=4.0)
    random.seed(1)
    for attempt in range(1, 10):
        ceiling = min(4.0, 0.5 * 2 ** (attempt - 1))
        delays = [policy.delay(attempt, ServerError("x")) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling / 2  # actually spread, not constant


def test_retry_after_wins() -> None:
    assert RetryPolicy(backoff_cap=1).delay(1, ServerError("x", retry_after=7.0)) == 7.0


def test_parse_retry_after() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("Fri, 27 Nov 2026 21:42:50 GMT", now=1795815767.0) == pytest.approx(3.0)
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_loop_retries_then_succeeds(sleeps: SleepRecorder) -> None:
    events: list[RetryEvent] = []
    calls: list[int] = []

    def operation(attempt: int) -> str:
        calls.append(attempt)
        if attempt < 3:
            raise ServerError("boom", retry_after=1.5)
        return "ok"

    assert run_with_retries(operation, RetryPolicy(retries=3), name="f", on_retry=events.append,
                            sleep=sleeps) == "ok"
    assert calls == [1, 2, 3]
    assert sleeps.delays == [1.5, 1.5]
    assert [(e.attempt, e.next_attempt, e.max_attempts) for e in events] == [(1, 2, 4), (2, 3, 4)]


def test_loop_gives_up_with_attempts_set(sleeps: SleepRecorder) -> None:
    def operation(attempt: int) -> None:
        raise ChecksumMismatchError("bad")

    with pytest.raises(ChecksumMismatchError) as info:
        run_with_retries(operation, RetryPolicy(retries=2), sleep=sleeps)
    assert info.value.attempts == 3 and len(sleeps.delays) == 2


def test_non_retryable_raises_at_once(sleeps: SleepRecorder) -> None:
    calls: list[int] = []

    def operation(attempt: int) -> None:
        calls.append(attempt)
        raise TooLargeError("too big")

    with pytest.raises(TooLargeError) as info:
        run_with_retries(operation, RetryPolicy(retries=5), sleep=sleeps)
    assert calls == [1] and sleeps.delays == [] and info.value.attempts == 1


def test_zero_retries_is_one_attempt(sleeps: SleepRecorder) -> None:
    with pytest.raises(ServerError) as info:
        run_with_retries(lambda n: (_ for _ in ()).throw(ServerError("x")), RetryPolicy(retries=0),
                         sleep=sleeps)
    assert info.value.attempts == 1 and sleeps.delays == []
