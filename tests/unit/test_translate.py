"""Every status the API answers is mapped once, in ``transport.translate``; same status, body decides."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from updl.sdk.errors import (
    BadRequestError,
    ChecksumMismatchError,
    OffsetConflictError,
    RangeNotSatisfiableError,
    UpdlError,
    UploadBusyError,
)
from updl.sdk.transport import translate


def answer(status: int, body: dict[str, Any], method: str = "PATCH") -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    response.headers["Content-Type"] = "application/json"
    response.url = "http://server/tus/abc"
    response.request = requests.Request(method, response.url, headers={"Authorization": "Bearer t"}).prepare()
    return response


@pytest.mark.parametrize(
    ("status", "body", "kind", "retryable"),
    [
        (409, {"error": "checksum failed", "expected": "a" * 32, "actual": "b" * 32}, ChecksumMismatchError, True),
        (409, {"error": "moved", "offset": 400, "sent": 0}, OffsetConflictError, False),
        (409, {"error": "the upload moved on concurrently", "sent": 0}, OffsetConflictError, False),
        (460, {"error": "checksum mismatch", "offset": 400}, ChecksumMismatchError, True),
        (416, {"error": "requested range not satisfiable", "size": 3}, RangeNotSatisfiableError, False),
        (423, {"error": "busy"}, UploadBusyError, True),
    ],
)
def test_each_status_becomes_one_error(
    status: int, body: dict[str, Any], kind: type[UpdlError], retryable: bool
) -> None:
    error = translate(answer(status, body))
    assert type(error) is kind and error.status == status and error.retryable is retryable


def test_an_offset_conflict_is_a_bad_request_that_says_where_the_upload_stands() -> None:
    error = translate(answer(409, {"error": "moved", "offset": 400, "sent": 0}))
    assert isinstance(error, BadRequestError) and isinstance(error, OffsetConflictError) and error.offset == 400


def test_a_corrupted_chunk_names_its_offset() -> None:
    assert "offset 400" in str(translate(answer(460, {"error": "checksum mismatch", "offset": 400})))
