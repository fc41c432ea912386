"""What a Client is made with can be injected, and :meth:`Client.clone` keeps it."""

from __future__ import annotations

from pathlib import Path

import requests

from tests.support.scripted import TOKEN, URL
from updl import Client, RetryPolicy, Settings
from updl.sdk.resume import ResumeStore


def test_clone_keeps_the_session_factory_and_the_resume_store(tmp_path: Path) -> None:
    made: list[requests.Session] = []

    def factory() -> requests.Session:
        made.append(requests.Session())
        return made[-1]

    store = ResumeStore(tmp_path / "resume.json")
    settings = Settings(url=URL, token=TOKEN)
    with (
        Client(settings=settings, retry=RetryPolicy(retries=1), session_factory=factory, resume_store=store) as client,
        client.clone() as clone,
    ):
        assert len(made) == 2 and made[0] is not made[1]  # each client its own session (not thread-safe)
        assert clone._transport.session is made[1] and clone._resume is store is client._resume
        assert clone.retry == client.retry and clone.settings is settings
