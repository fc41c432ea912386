"""Fixtures for unit tests: a scripted server (``responses``, ordered) and a client that never sleeps."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses
from responses.registries import OrderedRegistry

from tests.support.scripted import TOKEN, URL, SleepRecorder
from updl import Client, RetryPolicy


@pytest.fixture
def server() -> Iterator[responses.RequestsMock]:
    """A scripted server: registered answers are used once each, in order."""
    with responses.RequestsMock(registry=OrderedRegistry, assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def client(sleeps: SleepRecorder) -> Iterator[Client]:
    with Client(URL, TOKEN, retry=RetryPolicy(retries=3), sleep=sleeps) as c:
        yield c
