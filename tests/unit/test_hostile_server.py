"""A server's odd numbers and bodies get a clear ProtocolError or are ignored, never a crash.

The client side of the strict-numbers rule: ``str.isdigit`` takes ``²`` (which
``int`` refuses) and ``int`` refuses more than 4300 digits, so every count a
server sends goes through one parser.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import responses

from tests.support.scripted import URL, SleepRecorder, download_headers, file_info
from updl import Client, ProtocolError, RetryPolicy, UpdlError
from updl.sdk.headers import parse_count, parse_retry_after

ODD_COUNTS = ["\u00b2", "\u0663", "9" * 5000, "1" * 20, "-1", "+1", "0x10", "1 2", ""]


@pytest.mark.parametrize("value", ODD_COUNTS, ids=lambda v: repr(v[:12]))
def test_odd_counts_are_not_counts(value: str) -> None:
    assert parse_count(value) is None
    assert parse_retry_after(value) is None


def test_counts_are_counts() -> None:
    assert [parse_count(v) for v in ("0", " 42 ", "9" * 19)] == [0, 42, int("9" * 19)]


@pytest.mark.parametrize("length", ["\u00b2", "9" * 5000])
def test_head_with_an_odd_content_length_is_a_clear_error(
    server: responses.RequestsMock, client: Client, length: str
) -> None:
    server.head(URL + "/files/a", headers={**download_headers(b"abc"), "Content-Length": length})
    with pytest.raises(UpdlError, match="no usable ETag or Content-Length"):
        client.head("a")


def test_an_odd_retry_after_falls_back_to_the_backoff(
    server: responses.RequestsMock, sleeps: SleepRecorder, tmp_path: Path
) -> None:
    server.get(URL + "/info/a", status=503, headers={"Retry-After": "\u00b2"}, json={"error": "busy"})
    server.get(URL + "/info/a", json=file_info("a", b"abc"))
    with Client(URL, "t", retry=RetryPolicy(retries=1, backoff_cap=1.0), sleep=sleeps) as client:
        assert client.info("a").md5 == hashlib.md5(b"abc").hexdigest()
    assert len(sleeps.delays) == 1 and 0 <= sleeps.delays[0] <= 1.0


@pytest.mark.parametrize(
    "record",
    [
        {"size": "\u00b2"},
        {"size": "12"},
        {"size": -1},
        {"size": True},
        {"created": "yesterday"},
        {"created": None},
    ],
    ids=repr,
)
def test_a_malformed_file_record_is_a_protocol_error(
    server: responses.RequestsMock, client: Client, record: dict[str, object]
) -> None:
    server.get(URL + "/files", json={"files": [{**file_info("a", b"abc"), **record}], "next_cursor": None})
    with pytest.raises(ProtocolError, match="malformed file record"):
        client.list()


@pytest.mark.parametrize("body", ["<html>not updl</html>", "[1, 2]", '{"files": "abc"}'])
def test_a_listing_that_is_not_updl_json_is_a_protocol_error(
    server: responses.RequestsMock, client: Client, body: str
) -> None:
    server.get(URL + "/files", body=body, content_type="text/html")
    with pytest.raises(ProtocolError):
        client.list()


def test_a_cursor_that_is_not_a_string_is_a_protocol_error(server: responses.RequestsMock, client: Client) -> None:
    server.get(URL + "/files", json={"files": [file_info("a", b"abc")], "next_cursor": {"x": 1}})
    with pytest.raises(ProtocolError, match="cursor"):
        client.list()
