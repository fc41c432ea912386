"""Retrying an operation: a frozen policy, exponential backoff with full jitter, one bounded loop.

Every request the SDK sends goes through :func:`run_with_retries` once per
operation attempt, and nothing below it retries (the session has no urllib3
``Retry``): ``retries`` is exactly how many times a request is repeated, each
repeat is reported to ``on_retry``, and ``UpdlError.attempts`` is the true count.

Only errors whose ``retryable`` is true are retried. A ``Retry-After`` sent by
the server wins over the computed backoff, up to ``retry_after_cap``; a server
asking for longer fails the operation at once, saying how long it asked for
(a CI job should fail and say so, not sleep silently for an hour). The jitter
keeps many clients that failed together from retrying together.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from .errors import UpdlError

__all__ = ["Retrier", "RetryEvent", "RetryPolicy", "run_with_retries"]

T = TypeVar("T")
logger = logging.getLogger("updl")


@dataclass(frozen=True)
class RetryPolicy:
    """Up to ``retries`` retries after the first attempt, waiting full-jitter exponential backoff.

    A server's ``Retry-After`` of at most ``retry_after_cap`` seconds is waited
    instead; a longer one ends the retries (see :func:`run_with_retries`).
    """

    retries: int = 3
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    retry_after_cap: float = 60.0

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError("retries must be >= 0")
        if self.retry_after_cap < 0:
            raise ValueError("retry_after_cap must be >= 0")

    @property
    def max_attempts(self) -> int:
        """The first attempt plus the retries."""
        return self.retries + 1

    def delay(self, attempt: int, error: BaseException | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based).

        The error's ``retry_after`` wins when it has one (never more than
        ``retry_after_cap``); otherwise a uniform draw from
        ``[0, min(cap, base * 2 ** (attempt - 1))]``.
        """
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return min(max(float(retry_after), 0.0), self.retry_after_cap)
        return random.uniform(0, min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1)))


@dataclass(frozen=True)
class RetryEvent:
    """Attempt ``attempt`` of ``max_attempts`` on ``name`` failed with ``error``; retrying in ``delay`` s."""

    name: str
    attempt: int
    max_attempts: int
    error: UpdlError
    delay: float

    @property
    def next_attempt(self) -> int:
        """The number of the attempt about to start."""
        return self.attempt + 1


def run_with_retries(
    operation: Callable[[int], T],
    policy: RetryPolicy,
    *,
    name: str = "",
    on_retry: Callable[[RetryEvent], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    retry_if: Callable[[UpdlError], bool] | None = None,
) -> T:
    """Call ``operation(attempt)`` (attempt = 1, 2, ...) until it returns, retrying retryable errors.

    ``retry_if`` narrows which retryable errors are retried (default: all). The
    error that ends the loop is re-raised with ``attempts`` set; when it ends
    because the server's ``Retry-After`` exceeds ``policy.retry_after_cap``,
    its message says how long the server asked for.
    """
    attempt = 1
    while True:
        try:
            return operation(attempt)
        except UpdlError as error:
            error.attempts = attempt
            if not error.retryable or (retry_if is not None and not retry_if(error)):
                raise
            if attempt >= policy.max_attempts:
                logger.info("%s: attempt %d/%d failed: %s; giving up", name, attempt, policy.max_attempts, error)
                raise
            retry_after = error.retry_after
            if retry_after is not None and retry_after > policy.retry_after_cap:
                # Waiting less than asked would only be refused again; waiting that long
                # unannounced looks like a hang. Fail now and say why.
                error.message += (
                    f" (the server asked to wait {retry_after:.0f}s before retrying, "
                    f"longer than the {policy.retry_after_cap:.0f}s updl waits)"
                )
                logger.info("%s: attempt %d/%d failed: %s; not retrying", name, attempt, policy.max_attempts, error)
                raise
            delay = policy.delay(attempt, error)
            logger.info(
                "%s: attempt %d/%d failed: %s, retrying in %.1fs", name, attempt, policy.max_attempts, error, delay
            )
            if on_retry is not None:
                on_retry(RetryEvent(name, attempt, policy.max_attempts, error, delay))
            sleep(delay)
            attempt += 1


@dataclass(frozen=True)
class Retrier:
    """The one loop, bound to a client's policy, sleep and ``on_retry``: what operation modules retry with."""

    policy: RetryPolicy
    sleep: Callable[[float], None] = time.sleep
    on_retry: Callable[[RetryEvent], None] | None = None

    def run(self, operation: Callable[[int], T], name: str, retry_if: Callable[[UpdlError], bool] | None = None) -> T:
        """:func:`run_with_retries` with these settings."""
        return run_with_retries(
            operation, self.policy, name=name, on_retry=self.on_retry, sleep=self.sleep, retry_if=retry_if
        )
