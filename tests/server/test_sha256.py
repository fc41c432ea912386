"""SHA-256 end to end on the server: computed on every upload path, stored, announced, and verified."""

from __future__ import annotations

import base64
import hashlib

import pytest

from tests.support.api import Api, md5_hex, temp_files
from tests.support.live_server import LiveServer
from tests.support.tus import created, metadata, patch

# Deterministic content (no test may fail by chance); distinct per test through a tag.
DATA = bytes(range(256)) * 1200 + b"sha-256 test"


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sf_digest(data: bytes, algorithm: str = "sha-256") -> str:
    """An RFC 9530 dictionary member for ``data``: ``sha-256=:<base64>:``."""
    digest = hashlib.sha256(data).digest() if algorithm == "sha-256" else hashlib.md5(data).digest()
    return f"{algorithm}=:{base64.b64encode(digest).decode()}:"


def test_every_upload_path_stores_and_returns_sha256(api: Api) -> None:
    """POST /upload, PUT and tus all compute the SHA-256; FileInfo, listing and GET/HEAD carry it."""
    posted = api.request("POST", "/upload", files={"file": ("a.bin", DATA + b"a")}, data={"md5": md5_hex(DATA + b"a")})
    assert posted.status_code == 200, posted.text
    assert posted.json()["sha256"] == sha256_hex(DATA + b"a")
    put = api.put("b.bin", DATA + b"b")
    assert put.status_code == 200 and put.json()["sha256"] == sha256_hex(DATA + b"b")
    done = patch(api, created(api, len(DATA + b"c"), "c.bin"), 0, DATA + b"c")
    assert done.status_code == 204, done.text
    assert api.request("GET", "/info/c.bin").json()["sha256"] == sha256_hex(DATA + b"c")
    assert sf_digest(DATA + b"c") in done.headers["Repr-Digest"]

    listed = {f["name"]: f["sha256"] for f in api.request("GET", "/files").json()["files"]}
    assert listed == {n: sha256_hex(DATA + n[0].encode()) for n in ("a.bin", "b.bin", "c.bin")}
    for method in ("GET", "HEAD"):
        answer = api.request(method, "/files/b.bin")
        assert answer.headers["Repr-Digest"] == f"{sf_digest(DATA + b'b')}, {sf_digest(DATA + b'b', 'md5')}"
    part = api.get("b.bin", Range="bytes=0-9")
    assert part.status_code == 206
    assert part.headers["Repr-Digest"].startswith(sf_digest(DATA + b"b"))  # the whole file's, not the range's


@pytest.mark.parametrize("field", ["Repr-Digest", "Content-Digest"])
def test_put_digest_header_claim_is_verified(api: Api, live_server: LiveServer, field: str) -> None:
    """A right SHA-256 claim stores the file; a wrong one is a 409 naming sha256, and nothing is kept."""
    good = api.put("good.bin", DATA, **{field: f"{sf_digest(DATA)}, unknown=:AAAA:"})
    assert good.status_code == 200, good.text
    bad = api.put("bad.bin", DATA, **{field: sf_digest(b"other")})
    assert bad.status_code == 409
    assert bad.json() == {
        "error": "checksum failed - please attempt reuploading",
        "expected": sha256_hex(b"other"),
        "actual": sha256_hex(DATA),
        "algorithm": "sha256",
    }
    md5_claim = api.put("bad-md5.bin", DATA, **{field: sf_digest(b"other", "md5")})
    assert md5_claim.status_code == 409 and md5_claim.json()["algorithm"] == "md5"
    assert api.names() == ["good.bin"]
    assert temp_files(live_server.data_dir) == []


@pytest.mark.parametrize(
    "value",
    ["sha-256=AAAA", "sha-256=:AAAA:", "sha-256=:" + "A" * 2000 + ":", "((("],
    ids=["not-bytes", "wrong-length", "too-long", "not-a-dictionary"],
)
def test_malformed_digest_header_is_400(api: Api, value: str) -> None:
    """A Repr-Digest that is no Structured Fields dictionary of digests is a 400 before any byte is kept."""
    response = api.put("x.bin", DATA, **{"Repr-Digest": value})
    assert response.status_code == 400, response.text
    assert response.json()["error"]
    assert api.names() == []


def test_two_disagreeing_claims_are_400(api: Api) -> None:
    """Repr-Digest and Content-Digest (or Content-MD5) claiming different digests is a 400."""
    response = api.put("x.bin", DATA, **{"Repr-Digest": sf_digest(DATA), "Content-Digest": sf_digest(b"other")})
    assert response.status_code == 400
    assert api.names() == []


def test_multipart_sha256_claim_is_verified(api: Api) -> None:
    """The multipart ``sha256`` field is checked like ``md5``: 409 naming sha256, nothing kept; 400 if malformed."""
    md5 = md5_hex(DATA)
    good = api.post_parts(
        [("sha256", sha256_hex(DATA).upper().encode()), ("file", DATA, "g.bin"), ("md5", md5.encode())]
    )
    assert good.status_code == 200, good.text
    bad = api.post_parts([("file", DATA, "b.bin"), ("md5", md5.encode()), ("sha256", sha256_hex(b"x").encode())])
    assert bad.status_code == 409 and bad.json()["algorithm"] == "sha256"
    malformed = api.post_parts([("file", DATA, "m.bin"), ("md5", md5.encode()), ("sha256", b"abc")])
    assert malformed.status_code == 400
    assert api.names() == ["g.bin"]


def test_tus_metadata_sha256_is_verified(api: Api, live_server: LiveServer) -> None:
    """tus ``sha256`` metadata: checked at completion (409 naming sha256, upload gone, nothing kept)."""
    path = created(api, len(DATA), "bad.bin", sha256=sha256_hex(b"x"))
    refused = patch(api, path, 0, DATA)
    assert refused.status_code == 409 and refused.json()["algorithm"] == "sha256"
    assert api.names() == []
    assert api.request("HEAD", path, headers={"Tus-Resumable": "1.0.0"}).status_code == 404

    done = patch(api, created(api, len(DATA), "good.bin", sha256=sha256_hex(DATA)), 0, DATA)
    assert done.status_code == 204
    assert api.request("GET", "/info/good.bin").json()["sha256"] == sha256_hex(DATA)
    malformed = api.request(
        "POST",
        "/tus/",
        headers={"Tus-Resumable": "1.0.0", "Upload-Length": "3", "Upload-Metadata": metadata(name="m", sha256="zz")},
    )
    assert malformed.status_code == 400
