"""The client: upload, download, list, info, delete — each verified by MD5.

A facade, in the shape of s3transfer: :class:`Client` holds the settings, the
transport, the retry policy and the resume store, and hands each transfer to
the module of its operation — :mod:`updl.sdk.uploads` (multipart or tus) and
:mod:`updl.sdk.downloads` (to a path, resumable, or to a file object). The
small requests (listing, info, delete, ``HEAD``) are here.
"""

from __future__ import annotations

import builtins
import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from types import TracebackType
from typing import TypeVar
from urllib.parse import quote

import requests

from . import downloads, retention, shares, uploads
from .access import NewToken, TokenInfo, WhoAmI
from .attributes import FileAttributes
from .config import Settings, load_settings
from .dedup import offer as offer_content
from .downloads import Destination
from .errors import NotFoundError, ProtocolError, UpdlError
from .headers import expected_md5, file_info, parse_count
from .models import FileInfo, Prefix, Usage
from .progress import ProgressCallback
from .resume import ResumeStore
from .retention import seconds_of
from .retry import Retrier, RetryEvent, RetryPolicy
from .shares import ShareLink
from .transport import Transport, build_session, file_path, json_object
from .uploads import Source

__all__ = ["Client"]

RetryCallback = Callable[[RetryEvent], None]
T = TypeVar("T")
logger = logging.getLogger("updl")
#: Pages without a file, one after another, after which a listing is taken to be looping.
MAX_EMPTY_PAGES = 100


class Client:
    """A connection to one updl server.

    Unset arguments come from :func:`~updl.sdk.config.load_settings`
    (environment, config file, defaults); ``settings`` skips that entirely.
    ``retry`` defaults to ``RetryPolicy(retries=settings.retries)``; every
    request of every method is retried by that one policy's loop, and nowhere
    else. A ``session`` you pass is used as it is (mount no retrying adapter on
    it, or attempts multiply); ``session_factory`` makes the session of this
    client and of each :meth:`clone` (default :func:`~updl.sdk.transport.build_session`).
    ``resume_store`` records resumable transfers (default: the user's resume
    file). ``sleep`` is what retries wait with (tests inject a recorder).
    ``on_retry`` receives the retries of calls that pass none of their own.
    Use as a context manager or call :meth:`close`.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        profile: str | None = None,
        settings: Settings | None = None,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        session_factory: Callable[[], requests.Session] = build_session,
        resume_store: ResumeStore | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: RetryCallback | None = None,
    ) -> None:
        if settings is None:
            settings = load_settings(url, token, profile)
        self.settings = settings
        self.retry = retry if retry is not None else RetryPolicy(retries=settings.retries)
        self._sleep = sleep
        self._on_retry = on_retry
        self._session_factory = session_factory
        self._transport = Transport(settings, session, session_factory=session_factory)
        self._resume = resume_store if resume_store is not None else ResumeStore()

    def __repr__(self) -> str:
        return f"Client(url={self.settings.url!r}, token_source={self.settings.token_source!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the HTTP connections."""
        self._transport.close()

    def _retrier(self, on_retry: RetryCallback | None, retries: int | None = None) -> Retrier:
        """The one retry loop with this client's policy (``retries`` over it), sleep and ``on_retry``."""
        policy = self.retry if retries is None else dataclasses.replace(self.retry, retries=retries)
        return Retrier(policy, self._sleep, on_retry or self._on_retry)

    def _retrying(self, operation: Callable[[int], T], name: str, on_retry: RetryCallback | None) -> T:
        """Run ``operation`` in the one retry loop, with this client's policy, sleep and ``on_retry``."""
        return self._retrier(on_retry).run(operation, name)

    # -- upload and download: one module per operation ------------------------------------

    def upload(
        self,
        source: Source,
        name: str | None = None,
        *,
        on_progress: ProgressCallback | None = None,
        on_retry: RetryCallback | None = None,
        retries: int | None = None,
        progress: bool = False,
        resumable_threshold: int | None = None,
        no_clobber: bool = False,
        if_match: str | None = None,
        parts: int | None = None,
        expires_in: int | timedelta | None = None,
        preserve: bool = True,
        checksum: str | None = None,
        dedup: bool | None = None,
        sha256: str | None = None,
    ) -> FileInfo:
        """Upload a file (path or binary file object) as ``name`` (default: the file's base name).

        The file is read once per attempt and hashed on the way; the server
        checks the MD5 before keeping anything. Retryable failures (checksum
        mismatch, connection errors, 5xx, 429) start over with a fresh body. A
        file object is uploaded from its current position. Returns the stored
        file's info. A file that changes while it is read (size, mtime, ctime
        of its descriptor) is not stored: :class:`~updl.sdk.errors.SourceChangedError`,
        retried like the others (the retry reads it again).

        A path of at least ``resumable_threshold`` bytes (default
        ``settings.resumable_threshold``, 64 MiB; 0: always) goes over tus in
        checksummed chunks and resumes where it stopped, even in a later
        process (see :mod:`updl.sdk.tus`). With ``parts`` > 1 (default
        ``settings.parallel_parts``, at most 8) it goes as that many parallel
        partial uploads that the server joins (:mod:`updl.sdk.tus_parts`).

        ``no_clobber=True`` stores the file only if ``name`` does not exist yet;
        ``if_match="<md5>"`` only if ``name`` exists with that MD5 (replace that
        version and no other). Otherwise nothing is stored and
        :class:`~updl.sdk.errors.PreconditionFailedError` says what the server
        holds. The server checks again when it commits, so of two racing
        ``no_clobber`` uploads exactly one wins. A conditional upload is one
        multipart body (the resumable route takes no conditions). A retry that
        meets the version an earlier attempt stored (its answer lost on the way)
        returns that version rather than refusing. A malformed
        ``if_match`` is a ``ValueError`` before anything is sent.

        ``expires_in`` (seconds, or a ``timedelta``) makes the server delete the
        file that long after it is stored (``FileInfo.expires``); without it the
        user's or the server's default retention applies, if any.

        ``preserve`` (default): record the file's permission bits and mtime
        (a path, or a file object on a regular file) for downloads to restore;
        see :mod:`updl.sdk.attributes`.

        ``checksum="sha256"`` (default ``settings.checksum``) claims the file's
        SHA-256 as well, which the server verifies before keeping anything, and
        checks the SHA-256 it reports; ``sha256`` gives that digest if already
        known. ``dedup`` (default ``settings.dedup``): a path of at least 1 MiB
        is hashed first and offered (:meth:`link`); if the server holds that
        content for this user the name is linked to it and no byte is sent.
        """
        threshold = self.settings.resumable_threshold if resumable_threshold is None else resumable_threshold
        return uploads.upload(
            self._transport,
            self._resume,
            source,
            name,
            retrier=self._retrier(on_retry, retries),
            resumable_threshold=threshold,
            chunk_size=self.settings.resumable_chunk_size,
            parts=self.settings.parallel_parts if parts is None else parts,
            on_progress=on_progress,
            progress=progress,
            no_clobber=no_clobber,
            if_match=if_match,
            expires_in=seconds_of(expires_in),
            preserve=preserve,
            checksum=checksum or self.settings.checksum,
            sha256=sha256,
            dedup=self.settings.dedup if dedup is None else dedup,
        )

    def link(
        self,
        name: str,
        size: int,
        sha256: str,
        md5: str | None = None,
        *,
        no_clobber: bool = False,
        if_match: str | None = None,
        expires_in: int | timedelta | None = None,
        attributes: FileAttributes | None = None,
        on_retry: RetryCallback | None = None,
    ) -> FileInfo | None:
        """Upload by content: store ``name`` as the content of this size and digests, if the server
        holds it for this user (``POST /files/{name}``); the new file's info, or None (then upload).

        No byte of the file is sent. ``no_clobber``/``if_match``/``expires_in`` apply as in
        :meth:`upload`; ``attributes`` (:func:`~updl.sdk.attributes.local_attributes`) are recorded
        for the new name.
        """
        seconds = seconds_of(expires_in)
        terms = {uploads.EXPIRES_HEADER: str(seconds)} if seconds is not None else {}
        terms |= attributes.headers() if attributes else {}
        return offer_content(
            self._transport,
            self._retrier(on_retry),
            name,
            size,
            {"sha256": sha256, **({"md5": md5} if md5 else {})},
            {**uploads.conditional_headers(no_clobber, if_match), **terms},
        )

    def download(
        self,
        name: str,
        dest: Destination,
        *,
        on_progress: ProgressCallback | None = None,
        on_retry: RetryCallback | None = None,
        retries: int | None = None,
        progress: bool = False,
        size: int | None = None,
        within: str | os.PathLike[str] | None = None,
        connections: int | None = None,
        preserve: bool = True,
        checksum: str | None = None,
    ) -> FileInfo:
        """Download ``name`` into ``dest`` (a path, a directory, or a binary file object).

        For a path the bytes go to a hidden temporary file beside it
        (``.<name>.updl-<random>.part``), which is renamed into place only when
        the whole file's MD5 and length match the server's, so a partial or
        corrupt file never appears at ``dest``; missing parent directories are
        created. An interrupted download leaves the temporary file and the next
        call resumes it (``Range`` + ``If-Range``; see :mod:`updl.sdk.downloads`).
        An existing directory, or a path ending in ``/``, receives
        ``<dir>/<basename of name>``.
        A file object receives the bytes as they arrive and the check happens
        at the end (a seekable one is rewound and truncated on retry).

        ``size`` (e.g. from :meth:`list`): the download fails with
        :class:`~updl.sdk.errors.ProtocolError` rather than write more, or when
        the server announces another size. Without it the size the server
        announces is the limit. ``within``: refuse (``UnsafeNameError``) to
        write anywhere but inside that directory, symlinks resolved.

        ``connections`` (default ``settings.download_connections``, 4): a file of
        at least 64 MiB to a path comes over that many ranged GETs at once, each
        written at its offset, resumable, verified on the whole file (see
        :mod:`updl.sdk.ranged`); 1, or a server that refuses ranges: one stream.

        The returned info comes from the response headers: ``created`` from
        ``Last-Modified`` (second precision), ``last_accessed`` from ``Date``.

        ``preserve`` (default): a path gets the permission bits (through the
        umask) and mtime the uploader recorded, set on the temporary file
        before the rename; ``False`` leaves the defaults of a new file.

        ``checksum="sha256"`` (default ``settings.checksum``): a path download
        is also checked against the SHA-256 the server sends (``Repr-Digest``),
        read back from the file on disk before it is moved into place.
        """
        return downloads.download(
            self._transport,
            self._resume,
            name,
            dest,
            retrier=self._retrier(on_retry, retries),
            on_progress=on_progress,
            progress=progress,
            size=size,
            within=within,
            connections=self.settings.download_connections if connections is None else connections,
            preserve=preserve,
            checksum=checksum or self.settings.checksum,
        )

    # -- listing, info, delete ------------------------------------------------------------

    def iter_files(self, prefix: str | None = None, *, on_retry: RetryCallback | None = None) -> Iterator[FileInfo]:
        """Yield the caller's files ordered by name (optionally those starting with ``prefix``), page by page.

        A failed page is retried on its own; the pages before it are not fetched again.
        A server that repeats a cursor or a page, or sends page after page of
        nothing, gets a :class:`~updl.sdk.errors.ProtocolError` instead of an endless loop.
        """
        for entry in self.iter_entries(prefix, on_retry=on_retry):
            if isinstance(entry, FileInfo):
                yield entry

    def iter_entries(
        self, prefix: str | None = None, delimiter: str | None = None, *, on_retry: RetryCallback | None = None
    ) -> Iterator[FileInfo | Prefix]:
        """Yield files and, with ``delimiter``, folders (:class:`Prefix`) by name, page by page.

        With ``delimiter="/"`` a name below ``prefix`` that has another ``/``
        further on is rolled up into its folder (``prefix`` up to that ``/``),
        yielded once, as S3's ``ListObjectsV2`` does; without, every file is
        yielded. Paging and its checks are those of :meth:`iter_files`.
        """
        cursor: str | None = None
        what = f"listing {prefix}" if prefix else "listing"
        seen_cursors: set[str] = set()
        first_names: set[str] = set()  # in a true listing every name comes once, so every page starts anew
        empty_pages = 0
        while True:
            params = {
                key: value for key, value in (("prefix", prefix), ("delimiter", delimiter), ("cursor", cursor)) if value
            }
            page = self._retrying(
                lambda _: json_object(self._transport.request("GET", "/files", params=params)),  # noqa: B023 - called in this iteration
                what,
                on_retry,
            )
            entries: list[FileInfo | Prefix] = [FileInfo.from_json(item) for item in page.get("files", [])]
            prefixes = page.get("prefixes", []) if delimiter else []
            if not isinstance(prefixes, list) or not all(isinstance(p, str) for p in prefixes):
                raise ProtocolError("the server's listing sent prefixes that are not a list of strings")
            if prefixes:  # the server sends them apart: put them back in name order
                entries = sorted([*entries, *map(Prefix, prefixes)], key=lambda e: e.name)
            if entries and entries[0].name in first_names:
                first = entries[0].name
                raise ProtocolError(
                    f"the server's listing repeated a page (starting at {first!r}); stopped instead of looping"
                )
            first_names.update(e.name for e in entries[:1])
            empty_pages = 0 if entries else empty_pages + 1
            yield from entries
            cursor = page.get("next_cursor")
            if cursor is not None and not isinstance(cursor, str):
                raise ProtocolError(f"the server's listing sent a cursor that is not a string: {cursor!r:.40}")
            if not cursor:
                return
            if cursor in seen_cursors:
                raise ProtocolError(f"the server's listing repeated the cursor {cursor!r}; stopped instead of looping")
            if empty_pages >= MAX_EMPTY_PAGES:
                raise ProtocolError(
                    f"the server's listing sent {empty_pages} empty pages in a row; stopped instead of looping"
                )
            seen_cursors.add(cursor)

    def list(self, prefix: str | None = None, *, on_retry: RetryCallback | None = None) -> list[FileInfo]:
        """All of the caller's files (optionally those starting with ``prefix``), ordered by name."""
        return [*self.iter_files(prefix, on_retry=on_retry)]

    def usage(self, prefix: str | None = None, *, on_retry: RetryCallback | None = None) -> Usage:
        """How many files start with ``prefix`` (all: ``None``) and their total size, counted by the server.

        One request, however many files: the server sums them in one query.
        """
        params = {"prefix": prefix} if prefix else {}
        return self._retrying(
            lambda _: Usage.from_json(json_object(self._transport.request("GET", "/usage", params=params))),
            f"usage of {prefix}" if prefix else "usage",
            on_retry,
        )

    def info(self, name: str, *, on_retry: RetryCallback | None = None) -> FileInfo:
        """Info about one file; :class:`~updl.sdk.errors.NotFoundError` if there is none."""
        return self._retrying(
            lambda _: FileInfo.from_json(json_object(self._transport.request("GET", file_path("info", name)))),
            name,
            on_retry,
        )

    def delete(self, name: str, *, on_retry: RetryCallback | None = None) -> None:
        """Delete a file; :class:`~updl.sdk.errors.NotFoundError` if there is none.

        A 404 to a *retried* DELETE counts as success: the attempt that failed
        may have deleted the file before its answer was lost, and either way
        the file is gone.
        """

        def attempt(number: int) -> None:
            try:
                self._transport.request("DELETE", file_path("files", name)).close()
            except NotFoundError:
                if number == 1:
                    raise
                logger.info("%s: not found on attempt %d; an earlier attempt deleted it", name, number)

        self._retrying(attempt, name, on_retry)

    # -- the token and its account (added for scoped tokens) -----------------------------

    def whoami(self, *, on_retry: RetryCallback | None = None) -> WhoAmI:
        """Who this client's token belongs to, what it may do, and the account's usage."""
        return self._retrying(
            lambda _: WhoAmI.from_json(json_object(self._transport.request("GET", "/whoami"))), "whoami", on_retry
        )

    def list_tokens(self, *, on_retry: RetryCallback | None = None) -> builtins.list[TokenInfo]:
        """The account's tokens, revoked ones included (never their secrets)."""
        page = self._retrying(lambda _: json_object(self._transport.request("GET", "/tokens")), "tokens", on_retry)
        listed = page.get("tokens")
        if not isinstance(listed, list) or not all(isinstance(item, dict) for item in listed):
            raise ProtocolError("the server's token list is not a list of objects")
        return [TokenInfo.from_json(item) for item in listed]

    def create_token(
        self,
        scopes: Iterable[str] | None = None,
        *,
        prefix: str | None = None,
        expires_in: int | str | None = None,
        label: str | None = None,
    ) -> NewToken:
        """A new token for this account, no more powerful than this client's own (else ForbiddenError).

        Unset limits are this token's own. ``expires_in``: seconds, or a duration such as
        ``"30d"``. Not retried: a lost answer would leave a token nobody knows.
        """
        body: dict[str, object] = {"scopes": None if scopes is None else list(scopes), "prefix": prefix}
        body.update({"expires_in": expires_in, "label": label})
        sent = json.dumps({k: v for k, v in body.items() if v is not None})
        reply = self._transport.request("POST", "/tokens", data=sent, headers={"Content-Type": "application/json"})
        data = json_object(reply)
        secret = data.get("token")
        if not isinstance(secret, str):
            raise ProtocolError("the server's answer to a new token has no token")
        return NewToken(secret, TokenInfo.from_json(data))

    def revoke_token(self, token_id: str, *, on_retry: RetryCallback | None = None) -> None:
        """Revoke one of the account's tokens (NotFoundError if it has none of that id).

        Revoking a revoked token succeeds, so a retry after a lost answer does too.
        """
        path = f"/tokens/{quote(token_id, safe='')}"
        self._retrying(lambda _: self._transport.request("DELETE", path).close(), f"token {token_id}", on_retry)

    def share(self, name: str, expires: int | timedelta, *, max_downloads: int | None = None) -> ShareLink:
        """A URL that downloads ``name`` without a token until ``expires`` (at most 30 days) passes,
        it is revoked, or it served ``max_downloads`` downloads. Not retried."""
        return shares.create_share(self._transport, name, expires, max_downloads)

    def list_shares(self, *, on_retry: RetryCallback | None = None) -> builtins.list[ShareLink]:
        """The account's share links with their download counts (never their URLs)."""
        return self._retrying(lambda _: shares.list_shares(self._transport), "shares", on_retry)

    def revoke_share(self, share_id: str) -> None:
        """Revoke one of the account's live share links (NotFoundError otherwise)."""
        shares.revoke_share(self._transport, share_id)

    def remove_prefix(
        self,
        prefix: str,
        *,
        older_than: int | timedelta | None = None,
        dry_run: bool = False,
        on_removed: Callable[[FileInfo], None] | None = None,
        on_retry: RetryCallback | None = None,
    ) -> builtins.list[FileInfo]:
        """Delete every file whose name starts with ``prefix`` (only those created more than
        ``older_than`` seconds ago, if given); return them. ``dry_run``: only return them.

        The prefix is listed first, then each file deleted (``on_removed`` after
        each). An empty ``prefix`` is a ``ValueError``: it would mean every file.
        """
        if not prefix:
            raise ValueError("remove_prefix needs a non-empty prefix (an empty one is every file)")
        listed = self.list(prefix, on_retry=on_retry)
        return retention.remove_prefix(
            listed,
            lambda name: self.delete(name, on_retry=on_retry),
            older_than=older_than,
            dry_run=dry_run,
            on_removed=on_removed,
        )

    # -- batch helpers (added for batches: skip-existing, one client per worker thread) ---

    def head(self, name: str, *, on_retry: RetryCallback | None = None) -> FileInfo | None:
        """What the server has under ``name`` (``HEAD /files/{name}``: size and ETag MD5), or None if nothing.

        ``created`` comes from ``Last-Modified``. Sends no body and downloads nothing.
        """
        try:
            response = self._retrying(
                lambda _: self._transport.request("HEAD", file_path("files", name)), name, on_retry
            )
        except NotFoundError:
            return None
        with response:
            md5 = expected_md5(response)
            length = parse_count(response.headers.get("Content-Length"))
            if md5 is None or length is None:
                raise UpdlError(
                    f"{name}: the server's HEAD answer has no usable ETag or Content-Length", response=response
                )
            return file_info(response, name, length, md5)

    def clone(self) -> Client:
        """A new client with the same settings, retry policy, sleep, ``on_retry``, session factory and
        resume store, and its own connections.

        ``requests.Session`` is not guaranteed thread-safe: give each worker thread its own clone.
        """
        return Client(
            settings=self.settings,
            retry=self.retry,
            sleep=self._sleep,
            on_retry=self._on_retry,
            session_factory=self._session_factory,
            resume_store=self._resume,
        )
