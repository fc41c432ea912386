"""Pure functions of the server: names, ranges, sizes, tokens, Content-MD5."""

from __future__ import annotations

import pytest

from updl_server.auth import hash_secret, mint_token, secret_matches, split_token
from updl_server.config import parse_size
from updl_server.downloads import ByteRange, RangeNotSatisfiableError, parse_range
from updl_server.errors import HTTPError
from updl_server.names import user_name_problem, validate_name
from updl_server.receive import parse_content_md5

GOOD_NAMES = [
    "a",
    "build/42/app.tar.gz",
    "x.y",
    "..a",
    "a..",
    "a/.b",
    "ünïcødé/名前",
    "a b",
    "~/x",
    "a" * 1024,
    "é" * 512,
]
BAD_NAMES = [
    "",
    "/abs",
    "a//b",
    "a/",
    "a\\b",
    ".",
    "..",
    "../x",
    "a/../../x",
    "a/./b",
    "a/..",
    "x\x00y",
    "x\ny",
    "x\x1f",
    "x\x7f",
    "a" * 1025,
    "é" * 513,
]


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_validate_name_accepts(name: str) -> None:
    """Valid names come back unchanged."""
    assert validate_name(name) == name


@pytest.mark.parametrize("name", BAD_NAMES)
def test_validate_name_refuses_with_400(name: str) -> None:
    """Invalid names raise the contract's 400 with the name."""
    with pytest.raises(HTTPError) as caught:
        validate_name(name)
    assert caught.value.status == 400
    assert caught.value.body()["error"].startswith("invalid name: ")
    assert caught.value.body()["name"] == name


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("alice", True),
        ("a.b-c_d9", True),
        ("a" * 64, True),
        ("", False),
        ("a" * 65, False),
        ("a b", False),
        ("a/b", False),
        ("é", False),
    ],
)
def test_user_names(name: str, ok: bool) -> None:
    """User names are 1-64 characters of [A-Za-z0-9._-]."""
    assert (user_name_problem(name) is None) is ok


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 10, None),
        ("bytes=0-4", 10, ByteRange(0, 4)),
        ("bytes=5-", 10, ByteRange(5, 9)),
        ("bytes=-3", 10, ByteRange(7, 9)),
        ("bytes=-30", 10, ByteRange(0, 9)),
        ("bytes=8-100", 10, ByteRange(8, 9)),
        ("bytes=9-9", 10, ByteRange(9, 9)),
        ("BYTES = 1-2", 10, ByteRange(1, 2)),
        ("bytes=0-1,3-4", 10, None),  # several ranges: the whole file
        ("items=0-1", 10, None),  # unknown unit: ignored
        ("bytes=4-2", 10, None),  # malformed: ignored
        ("bytes=a-b", 10, None),
        ("bytes=-", 10, None),
        ("bytes=1", 10, None),
    ],
)
def test_parse_range(header: str | None, size: int, expected: ByteRange | None) -> None:
    """Satisfiable single ranges parse; anything else means the whole file."""
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    ("header", "size"), [("bytes=10-", 10), ("bytes=10-20", 10), ("bytes=-0", 10), ("bytes=0-", 0), ("bytes=-5", 0)]
)
def test_parse_range_unsatisfiable(header: str, size: int) -> None:
    """Ranges outside the file are unsatisfiable."""
    with pytest.raises(RangeNotSatisfiableError):
        parse_range(header, size)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("100000", 100_000),
        ("500M", 500_000_000),
        ("10G", 10_000_000_000),
        ("1GiB", 1 << 30),
        ("1gib", 1 << 30),
        ("2KiB", 2048),
        ("3k", 3000),
        ("4MB", 4_000_000),
        ("1TiB", 1 << 40),
        (" 7 MiB ", 7 << 20),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    """Sizes accept plain bytes, decimal and binary suffixes."""
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "M", "1.5G", "-1", "0", "10X", "1i", "10 GiBs"])
def test_parse_size_refuses(text: str) -> None:
    """Malformed or zero sizes are refused."""
    with pytest.raises(ValueError):
        parse_size(text)


def test_token_round_trip() -> None:
    """A minted token splits into its id and a secret that verifies against the stored hash."""
    token = mint_token()
    assert token.text.startswith(f"updl_{token.token_id}_")
    parts = split_token(token.text)
    assert parts is not None
    token_id, secret = parts
    assert token_id == token.token_id
    assert token.secret_hash == hash_secret(secret)
    assert secret not in token.secret_hash
    assert secret_matches(secret, token.secret_hash)
    assert not secret_matches(secret + "x", token.secret_hash)
    assert mint_token().text != token.text


SECRET = "s" * 43
MALFORMED_TOKENS = [
    "",
    "updl_",
    "updl_0123456789abcdef",
    "updl_0123456789abcdef_",
    "updl_0123456789ABCDEF_" + SECRET,
    "xx_0123456789abcdef_" + SECRET,
    "updl_0123456789abcde_" + SECRET,
    "updl_0123456789abcdef_a b",
]


@pytest.mark.parametrize("text", MALFORMED_TOKENS)
def test_split_token_refuses_malformed(text: str) -> None:
    """Tokens not of the form updl_<16 hex>_<secret> are refused."""
    assert split_token(text) is None


def test_content_md5() -> None:
    """Content-MD5 is base64 of 16 bytes; hex or other lengths are a 400."""
    assert parse_content_md5("1B2M2Y8AsgTpgAmY7PhCfg==") == "d41d8cd98f00b204e9800998ecf8427e"
    for bad in ["d41d8cd98f00b204e9800998ecf8427e", "not base64!", "AAAA", ""]:
        with pytest.raises(HTTPError) as caught:
            parse_content_md5(bad)
        assert caught.value.status == 400
