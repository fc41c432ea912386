"""Fixtures for the server's API tests: authenticated clients for fresh users."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from tests.support.api import Api

if TYPE_CHECKING:
    from tests.support.live_server import LiveServer


@pytest.fixture
def api(live_server: LiveServer, token: str) -> Api:
    """A fresh user on the session's server."""
    return Api(live_server.url, token)


@pytest.fixture
def make_api() -> Callable[[LiveServer], Api]:
    """A fresh user on a given server (e.g. one from ``server_factory``)."""
    counter = iter(range(1, 1000))

    def make(server: LiveServer) -> Api:
        return Api(server.url, server.add_user(f"extra{next(counter)}-{os.getpid()}"))

    return make
