"""Helpers for races: jobs released together, uploads all in flight at once, blobs on disk."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import requests

from tests.support.api import Api

DEADLINE = 30.0


def committed_blobs(data_dir: Path) -> list[Path]:
    """Committed blobs in a data dir (not temporaries, not the database)."""
    return [p for p in (data_dir / "blobs").glob("??/*") if p.is_file()]


def all_at_once(jobs: list[Callable[[], object]], timeout: float = DEADLINE) -> list[object]:
    """Run ``jobs`` in threads released together by a barrier; their results, in order."""
    barrier = threading.Barrier(len(jobs), timeout=timeout)
    results: list[object] = [None] * len(jobs)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = jobs[index]()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(t.is_alive() for t in threads), "a job did not finish in time"
    if errors:
        raise errors[0]
    return results


def race_puts(
    apis: list[Api], name: str, contents: list[bytes], headers: dict[str, str] | None = None
) -> list[requests.Response]:
    """PUT ``contents[i]`` to ``name`` through ``apis[i]``, every body half sent before any ends.

    Each upload is held mid-body until all have started, so their commits race.
    """
    all_half_sent = threading.Barrier(len(contents), timeout=DEADLINE)

    def body(data: bytes) -> Iterator[bytes]:
        half = len(data) // 2
        yield data[:half]
        all_half_sent.wait()
        yield data[half:]

    def job(api: Api, data: bytes) -> Callable[[], requests.Response]:
        # A fresh session per upload: requests sessions are not for concurrent use.
        return lambda: Api(api.base, api.token).put(name, body(data), **(headers or {}))

    results = all_at_once([job(api, data) for api, data in zip(apis, contents, strict=True)])
    return [r for r in results if isinstance(r, requests.Response)]
