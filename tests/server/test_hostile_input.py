"""Hostile numbers and names: every odd value is a 400 JSON answer (or an ignored Range), never a 500."""

from __future__ import annotations

import base64

import pytest

from tests.support.api import Api, md5_hex, temp_files
from tests.support.live_server import LiveServer
from tests.support.tus import STREAM, TUS, created, metadata

# Superscript two passes str.isdigit() but not int(); 5000 digits pass isdigit() but int()
# refuses more than 4300; 20 digits overflow the catalog's 64-bit integers.
ODD_NUMBERS = ["\u00b2", "9" * 5000, "1" * 20, "-1", "+1", "1_000", "0x10", ""]


@pytest.mark.parametrize("limit", [*ODD_NUMBERS, "\u0663"], ids=repr)  # U+0663: Arabic-Indic 3
def test_odd_limit_is_400(api: Api, limit: str) -> None:
    """``limit`` must be ASCII digits; anything else is a JSON 400, not a 500 or a silent 3."""
    api.upload("f", b"x")
    response = api.request("GET", "/files", params={"limit": limit})
    assert response.status_code == 400, response.text
    assert response.json()["field"] == "limit"


@pytest.mark.parametrize(
    "spec",
    ["\u00b2-", "-\u00b2", "0-\u00b2", "9" * 5000 + "-", "-" + "9" * 5000, "0-" + "9" * 5000, "0-" + "1" * 20],
    ids=lambda s: repr(s[:24]),
)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_odd_range_is_ignored(api: Api, spec: str, method: str) -> None:
    """A Range whose positions are not ASCII digits, or too long, is ignored (RFC 9110): 200, all."""
    data = bytes(range(256)) * 4
    api.upload("r.bin", data)
    response = api.request(method, "/files/r.bin", headers={"Range": f"bytes={spec}"})
    assert response.status_code == 200, response.text
    assert response.headers["Content-Length"] == str(len(data))
    assert "Content-Range" not in response.headers
    if method == "GET":
        assert response.content == data


@pytest.mark.parametrize("length", ODD_NUMBERS, ids=lambda s: repr(s[:24]))
def test_odd_upload_length_is_400(api: Api, length: str) -> None:
    """tus creation with an odd ``Upload-Length``: 400 naming the header, nothing created."""
    response = api.request(
        "POST", "/tus/", headers={**TUS, "Upload-Length": length, "Upload-Metadata": metadata(name="odd.bin")}
    )
    assert response.status_code == 400, response.text
    assert response.json()["field"] == "Upload-Length"
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert "Location" not in response.headers


@pytest.mark.parametrize("offset", ODD_NUMBERS, ids=lambda s: repr(s[:24]))
def test_odd_upload_offset_is_400(api: Api, offset: str) -> None:
    """A PATCH with an odd ``Upload-Offset``: 400 naming the header; the upload is untouched."""
    data = b"0123456789"
    path = created(api, len(data), md5=md5_hex(data))
    response = api.request("PATCH", path, data=data, headers={**STREAM, "Upload-Offset": offset})
    assert response.status_code == 400, response.text
    assert response.json()["field"] == "Upload-Offset"
    assert api.request("HEAD", path, headers=TUS).headers["Upload-Offset"] == "0"


REPLACEMENT = "x/\ufffd"  # what a server that decodes with errors="replace" makes of x/%ff


@pytest.mark.parametrize("escape", ["%ff", "%fe", "%c3", "%ed%a0%80", "%c0%af"])
def test_put_of_a_name_that_is_not_utf8_is_400(api: Api, live_server: LiveServer, escape: str) -> None:
    """Invalid UTF-8 (a stray byte, a cut sequence, a surrogate, an overlong '/') is a 400
    naming the URL, and nothing is stored: ``%ff`` and ``%fe`` never become one U+FFFD file."""
    response = api.request("PUT", f"/files/x/{escape}", data=b"bytes")
    assert response.status_code == 400, response.text
    assert "UTF-8" in response.json()["error"]
    assert api.names() == []
    assert temp_files(live_server.data_dir) == []


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/files/x/%ff"),
        ("HEAD", "/files/x/%ff"),
        ("DELETE", "/files/x/%fe"),
        ("GET", "/info/x/%ff"),
        ("GET", "/files?prefix=x/%ff"),
        ("GET", "/files?prefix=x&cursor=%ff"),
    ],
)
def test_reading_a_name_that_is_not_utf8_is_400(api: Api, method: str, url: str) -> None:
    """Every route refuses invalid UTF-8 in the path or query, even with a U+FFFD file stored."""
    api.upload(REPLACEMENT, b"not yours")
    response = api.request(method, url)
    assert response.status_code == 400, response.text
    if method != "HEAD":
        assert "UTF-8" in response.json()["error"]
    assert api.names() == [REPLACEMENT]
    assert api.get(REPLACEMENT).content == b"not yours"


def test_tus_and_multipart_names_that_are_not_utf8_are_400(api: Api) -> None:
    """The same rule where the name travels in the body or in Upload-Metadata."""
    bad = base64.b64encode(b"x/\xff").decode()
    tus = api.request("POST", "/tus/", headers={**TUS, "Upload-Length": "1", "Upload-Metadata": f"name {bad}"})
    assert tus.status_code == 400 and "UTF-8" in tus.json()["error"]
    form = api.post_parts([("name", b"x/\xff"), ("md5", md5_hex(b"1").encode()), ("file", b"1", "f")])
    assert form.status_code == 400 and "UTF-8" in form.json()["error"]
    assert api.names() == []
