"""Request bodies into blobs: raw (``PUT``) and streaming multipart (``POST /upload``).

A *source* reads one request body and feeds the file's bytes to a
``HashingSink`` as they arrive, then says what the client claimed (name and
expected MD5 and/or SHA-256). Nothing here reads a whole body into memory.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.requests import ClientDisconnect, Request

from .attributes import NO_ATTRIBUTES, Attributes, parse_mode, parse_mtime
from .digests import parse_digest_fields, parse_sha256_hex
from .errors import bad_request, too_large
from .formats import MD5_HEX
from .names import validate_name
from .pipeline import WorkerPipe
from .storage import BlobWriter

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

MAX_TEXT_PART = 4 * 1024
_TEXT_PARTS = (b"md5", b"name", b"sha256", b"mode", b"mtime")


class RequestBody:
    """One request's body as a stream that can be resumed (to drain it after an error)."""

    def __init__(self, request: Request) -> None:
        """Wrap ``request``; the body is read only on demand."""
        self._stream = request.stream()
        self.started = False
        self.gone = False

    async def chunks(self) -> AsyncIterator[bytes]:
        """The remaining body, chunk by chunk; ``ClientDisconnect`` if the client goes away
        (or stalls past the body timeout), and then ``gone`` is true."""
        self.started = True
        try:
            async for chunk in self._stream:
                if chunk:
                    yield chunk
        except ClientDisconnect:
            self.gone = True
            raise

    async def drain(self, limit: int) -> None:
        """Read and discard up to ``limit`` more bytes.

        Answering before the body is read makes the server close a connection
        with unread data, which resets it and can destroy the answer in
        flight; draining lets the client read the error.
        """
        self.started = True
        seen = 0
        try:
            async for chunk in self._stream:
                seen += len(chunk)
                if seen > limit:
                    return
        except ClientDisconnect:
            return


class HashingSink:
    """Writes to a blob while hashing (MD5 and SHA-256, each on a thread of its own) and counting;
    refuses to pass ``max_size``.

    ``write`` only counts and queues, so the 413 comes at once; the hashing
    and storing happen in a worker thread (:class:`~updl_server.pipeline.WorkerPipe`):
    sources call ``pump`` after each received chunk, the caller ``finish``
    before reading ``md5``, and ``settle`` before aborting the writer.
    """

    def __init__(self, writer: BlobWriter, max_size: int) -> None:
        """Feed ``writer``; raise the contract's 413 once more than ``max_size`` bytes arrive."""
        self._hash = hashlib.md5(usedforsecurity=False)
        self._sha256 = hashlib.sha256()
        self._pipe = WorkerPipe(writer.write, [self._hash, self._sha256])
        self.max_size = max_size
        self.size = 0

    def write(self, data: bytes) -> None:
        """Count ``data`` and queue it for hashing and storing (413 past the limit)."""
        self.size += len(data)
        if self.size > self.max_size:
            raise too_large(self.max_size)
        self._pipe.add(data)

    async def pump(self) -> None:
        """Let the worker thread take a full batch."""
        await self._pipe.pump()

    async def finish(self) -> None:
        """Hash and store everything still queued; afterwards ``md5`` is final."""
        await self._pipe.finish()

    def settle(self) -> None:
        """Block until no batch is being written."""
        self._pipe.settle()

    @property
    def md5(self) -> str:
        """Hex MD5 of everything stored so far."""
        return self._hash.hexdigest()

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of everything stored so far."""
        return self._sha256.hexdigest()


@dataclass(frozen=True)
class Claim:
    """What the client said about the file: its name and, optionally, its MD5, SHA-256 and attributes.

    ``md5`` and ``sha256`` are lower-case hex for comparison; ``expected`` is
    how the client sent the MD5, echoed in a 409.
    """

    name: str
    md5: str | None = None
    expected: str | None = None
    attributes: Attributes = NO_ATTRIBUTES
    sha256: str | None = None


class BodySource(Protocol):
    """A request body that delivers one file into a sink."""

    body: RequestBody

    async def fill(self, sink: HashingSink) -> Claim:
        """Stream the file into ``sink``; return the client's claim. Raises ``HTTPError`` 400."""


def parse_content_md5(header: str) -> str:
    """Hex digest from an RFC 1864 ``Content-MD5`` header (base64 of 16 bytes); 400 if malformed."""
    try:
        digest = base64.b64decode(header.strip(), validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 16:
        raise bad_request("malformed Content-MD5: expected base64 of the 16-byte MD5 digest", content_md5=header)
    return digest.hex()


class RawSource:
    """A ``PUT`` body: the bytes are the file; ``Content-MD5`` and ``Repr-Digest``/``Content-Digest``
    (RFC 9530: ``sha-256``, ``md5``) are the optional claims."""

    def __init__(
        self,
        body: RequestBody,
        name: str,
        content_md5: str | None,
        attributes: Attributes = NO_ATTRIBUTES,
        digest_headers: dict[str, str] | None = None,
    ) -> None:
        """Validate the name and the claims up front, before any byte is stored.

        ``digest_headers`` maps a header name to its value; a whole body's
        ``Content-Digest`` is its representation's digest too, and two claims of
        one algorithm that disagree are a 400.
        """
        self.body = body
        self._name = validate_name(name)
        self._md5 = None if content_md5 is None else parse_content_md5(content_md5)
        self._attributes = attributes
        self._sha256: str | None = None
        for field, value in (digest_headers or {}).items():
            claimed = parse_digest_fields(value, field)
            for algorithm, digest in claimed.items():
                held = self._md5 if algorithm == "md5" else self._sha256
                if held is not None and held != digest:
                    raise bad_request(f"two different {algorithm} claims", field=field)
                if algorithm == "md5":
                    self._md5 = digest
                else:
                    self._sha256 = digest

    async def fill(self, sink: HashingSink) -> Claim:
        """Copy the whole body into ``sink``."""
        async for chunk in self.body.chunks():
            sink.write(chunk)
            await sink.pump()
        return Claim(self._name, self._md5, self._md5, self._attributes, self._sha256)


class MultipartSource:
    """A ``multipart/form-data`` body with ``file``, ``md5`` and optional ``name``, ``sha256``, ``mode``,
    ``mtime`` parts."""

    def __init__(
        self, body: RequestBody, content_type: str | None, on_name: Callable[[str], Awaitable[None]] | None = None
    ) -> None:
        """Check the content type and boundary up front.

        ``on_name`` is awaited once with the ``name`` part as soon as it is parsed
        (before the file's bytes when the client sends ``name`` first), or without
        one with the file part's filename once the body is read; it may raise.
        """
        self.body = body
        self._on_name = on_name
        kind, params = parse_options_header(content_type)
        boundary = params.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            raise bad_request("expected a multipart/form-data body with a boundary")
        self._boundary = boundary

    async def fill(self, sink: HashingSink) -> Claim:
        """Parse the body as it streams; file bytes go to ``sink``, text parts are collected."""
        parts = _Parts(sink)
        try:
            parser = MultipartParser(self._boundary, callbacks=parts.callbacks())
            pending = self._on_name
            async for chunk in self.body.chunks():
                parser.write(chunk)
                await sink.pump()
                if pending is not None and parts.name is not None:
                    announce, pending = pending, None
                    await announce(parts.name)
        except FormParserError as exc:
            raise bad_request(f"malformed multipart body: {exc}") from exc
        if parser.state != MultipartState.END:
            raise bad_request("malformed multipart body: it ends before the closing boundary")
        claim = parts.claim()
        if pending is not None:  # no name part: the name is the file's filename, known only now
            await pending(claim.name)
        return claim


class _Parts:
    """Multipart parser callbacks: routes each part's bytes to the sink, a buffer or nowhere."""

    def __init__(self, sink: HashingSink) -> None:
        self._sink = sink
        self._field = bytearray()
        self._value = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._current: str | None = None  # "file", a text part's name, or None (ignored part)
        self._text = bytearray()
        self._filename: str | None = None
        self._seen_file = False
        self._texts: dict[str, str] = {}

    def callbacks(self) -> MultipartCallbacks:
        """The callback table ``MultipartParser`` expects."""
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def on_part_begin(self) -> None:
        self._headers = {}
        self._current = None
        self._text = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[bytes(self._field).strip().lower()] = bytes(self._value).strip()
        self._field, self._value = bytearray(), bytearray()

    def on_headers_finished(self) -> None:
        disposition = self._headers.get(b"content-disposition")
        if disposition is None:
            raise bad_request("malformed multipart body: a part has no Content-Disposition")
        _, params = parse_options_header(disposition)
        field = params.get(b"name")
        if field == b"file":
            if self._seen_file:
                raise bad_request("two 'file' parts: send one file per upload")
            self._seen_file = True
            self._current = "file"
            self._filename = _utf8(params.get(b"filename", b""), "the file name")
        elif field in _TEXT_PARTS:
            self._current = field.decode()
            if self._current in self._texts:
                raise bad_request(f"two {self._current!r} parts")
        else:
            self._current = None  # unknown parts are ignored, as the contract says

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._current == "file":
            self._sink.write(data[start:end])
        elif self._current is not None:
            self._text += data[start:end]
            if len(self._text) > MAX_TEXT_PART:
                raise bad_request(f"the {self._current!r} part is longer than {MAX_TEXT_PART} bytes")

    def on_part_end(self) -> None:
        if self._current is not None and self._current != "file":
            value = _utf8(bytes(self._text), f"the {self._current!r} part")
            if self._current == "md5":
                value = value.strip()
                if not MD5_HEX.match(value):
                    raise bad_request("md5 must be 32 hex digits", md5=value)
            elif self._current == "sha256":
                value = parse_sha256_hex(value, "the multipart body")
            elif self._current == "name":
                validate_name(value)  # refuse a bad name before the file part is stored
            elif self._current == "mode":
                parse_mode(value)  # refuse a bad attribute before the file part is stored, too
            else:
                parse_mtime(value)
            self._texts[self._current] = value
        self._current = None

    @property
    def name(self) -> str | None:
        """The ``name`` part, once it has been parsed."""
        return self._texts.get("name")

    def claim(self) -> Claim:
        """The client's claim once the whole body is parsed; 400 for missing parts."""
        if not self._seen_file:
            raise bad_request("missing the 'file' part")
        md5 = self._texts.get("md5")
        if md5 is None:
            raise bad_request("missing the 'md5' part (32 hex digits of the file's MD5)")
        name = self._texts.get("name", self._filename or "")
        attributes = Attributes.parse(self._texts.get("mode"), self._texts.get("mtime"))
        return Claim(validate_name(name), md5.lower(), md5, attributes, self._texts.get("sha256"))


def _utf8(raw: bytes, what: str) -> str:
    """Decode UTF-8 text from the body; 400 if it is not."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request(f"{what} is not valid UTF-8") from None
