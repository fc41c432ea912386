"""The exceptions the SDK raises.

Every failure the SDK reports is a :class:`UpdlError`; HTTP statuses and
``requests`` exceptions are turned into these in one place,
:func:`updl.sdk.transport.translate`. Some also inherit a builtin so that a
caller's plain ``except FileNotFoundError`` / ``except ConnectionError`` works::

    UpdlError                                  .response .status .retryable .retry_after .attempts
    ├── AuthenticationError                    401, 403
    │   └── ForbiddenError                     403: a valid token without the scope (or prefix)  .missing_scope
    ├── NotFoundError (FileNotFoundError)      404
    ├── ChecksumMismatchError       retryable  409 on upload, 460 on a tus chunk; local mismatch on download
    │                                          .expected .actual
    ├── TooLargeError                          413  .max_size
    ├── PreconditionFailedError                412: the name exists (no_clobber) or is another version (if_match)
    │                                          .name .current_md5
    ├── QuotaExceededError                     507 with quota fields: the upload would pass the user's quota
    │                                          .quota_bytes .used_bytes .quota_files .used_files
    ├── BadRequestError                        400 and other 4xx
    │   ├── OffsetConflictError                409 to a tus PATCH not at the upload's offset  .offset
    │   └── RangeNotSatisfiableError           416 to a ranged download
    ├── ServerError                 retryable  5xx  .retry_after
    │   ├── RateLimitedError        retryable  429
    │   └── InsufficientStorageError           507: the server's disk is full (retrying cannot help)
    ├── ConnectionFailedError (ConnectionError)  retryable  refused, timed out, dropped mid-transfer
    │   └── TlsError                           TLS handshake failed (e.g. https:// to a plain-HTTP server)
    ├── UploadBusyError             retryable  423: another request is writing to that resumable upload  .retry_after
    ├── SourceChangedError          retryable  the local file changed while being uploaded
    ├── InvalidSettingsError                   bad URL, config file or profile
    ├── ProtocolError                          more bytes than announced, another size than listed,
    │                                          a listing that repeats itself, a malformed answer
    ├── UnsafeNameError                        a local path that would leave the output directory
    ├── SelectionError                         arguments that name no list of files (a directory without -r)
    ├── NoFilesError                           nothing selected to upload, nothing under a prefix to download
    ├── ManifestError                          a manifest line that cannot be read, mixed digest lengths
    ├── TooManyDeletionsError                  a sync --delete over the threshold, without force  .deletions
    ├── MissingFilesError (FileNotFoundError)  files a manifest lists do not exist
    └── BatchFailedError                       every file of a batch failed  .errors
        └── PartialFailureError                some files of a batch failed, others succeeded

Warnings (``warnings.warn``, not raised): :class:`ConfigWarning` for a config
file key that is ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import requests

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "BatchFailedError",
    "ChecksumMismatchError",
    "ConfigWarning",
    "ConnectionFailedError",
    "ForbiddenError",
    "InsufficientStorageError",
    "InvalidSettingsError",
    "ManifestError",
    "MissingFilesError",
    "NoFilesError",
    "NotFoundError",
    "OffsetConflictError",
    "PartialFailureError",
    "PreconditionFailedError",
    "ProtocolError",
    "QuotaExceededError",
    "RangeNotSatisfiableError",
    "RateLimitedError",
    "SelectionError",
    "ServerError",
    "SourceChangedError",
    "TlsError",
    "TooLargeError",
    "UnsafeNameError",
    "UpdlError",
    "UploadBusyError",
]


class UpdlError(Exception):
    """Root of every error the SDK raises.

    ``response`` is the HTTP response that caused it (if any), ``status`` its
    status code, ``retryable`` whether a fresh attempt may succeed,
    ``retry_after`` the server's ``Retry-After`` in seconds (if it sent one), and
    ``attempts`` how many attempts were made before giving up.
    """

    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        response: requests.Response | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.response = response
        self.status = status if status is not None or response is None else response.status_code
        self.retry_after = retry_after
        self.attempts = 1

    def __str__(self) -> str:
        return self.message


class AuthenticationError(UpdlError):
    """The server rejected the token (401) or refused access (403)."""


class ForbiddenError(AuthenticationError):
    """The token is valid but may not do this (403): it lacks ``missing_scope``, or the name is outside its prefix."""

    def __init__(self, message: str, *, missing_scope: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.missing_scope = missing_scope


class NotFoundError(UpdlError, FileNotFoundError):
    """No such file on the server (404)."""


class ChecksumMismatchError(UpdlError):
    """The bytes that arrived do not have the MD5 the sender computed.

    Raised for a 409 answer to an upload and for a download whose bytes do not
    match the server's ``Content-MD5``/``ETag``. Retryable: the next attempt
    starts over from the first byte.
    """

    retryable: ClassVar[bool] = True

    def __init__(
        self,
        message: str,
        *,
        expected: str | None = None,
        actual: str | None = None,
        response: requests.Response | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, response=response, status=status)
        self.expected = expected
        self.actual = actual


class TooLargeError(UpdlError):
    """The file exceeds the server's size limit (413); ``max_size`` is the limit in bytes."""

    def __init__(
        self,
        message: str,
        *,
        max_size: int | None = None,
        response: requests.Response | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, response=response, status=status)
        self.max_size = max_size


class PreconditionFailedError(UpdlError):
    """A conditional upload was refused (412): nothing was stored, the name is unchanged.

    ``current_md5`` is the MD5 of the version the server holds (``None``: the
    name does not exist, e.g. ``if_match`` on a missing file). Not retryable:
    the next attempt meets the same version.
    """

    def __init__(
        self,
        message: str,
        *,
        name: str | None = None,
        current_md5: str | None = None,
        response: requests.Response | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, response=response, status=status)
        self.name = name
        self.current_md5 = current_md5


class BadRequestError(UpdlError):
    """The server refused the request as malformed (400, other 4xx), e.g. an invalid name."""


class OffsetConflictError(BadRequestError):
    """A tus PATCH was not at the upload's offset (409 with ``offset``/``sent``): another writer moved it.

    ``offset`` is where the server's upload stands, if it said; ``HEAD`` the upload and continue from there.
    """

    def __init__(
        self,
        message: str,
        *,
        offset: int | None = None,
        response: requests.Response | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, response=response, status=status)
        self.offset = offset


class RangeNotSatisfiableError(BadRequestError):
    """A ranged download asked for bytes past the end of the file (416): the local part is not a prefix."""


class ServerError(UpdlError):
    """The server failed (5xx); ``retry_after`` is its ``Retry-After`` in seconds, if sent."""

    retryable: ClassVar[bool] = True


class RateLimitedError(ServerError):
    """The server asked the client to slow down (429)."""


class InsufficientStorageError(ServerError):
    """The server has no room for the upload (507); not retried: only freeing space helps."""

    retryable: ClassVar[bool] = False


class QuotaExceededError(UpdlError):
    """The upload would pass the user's quota (507 with quota fields); nothing was stored.

    Not retried: only deleting files or a larger quota helps. ``None`` fields: unlimited or not sent.
    """

    def __init__(
        self,
        message: str,
        *,
        quota_bytes: int | None = None,
        used_bytes: int | None = None,
        quota_files: int | None = None,
        used_files: int | None = None,
        **kwargs: Any,
    ) -> None:
        """Remember the quota and the usage the server reported."""
        super().__init__(message, **kwargs)
        self.quota_bytes = quota_bytes
        self.used_bytes = used_bytes
        self.quota_files = quota_files
        self.used_files = used_files


class ConnectionFailedError(UpdlError, ConnectionError):
    """The server could not be reached, did not answer in time, or the connection broke."""

    retryable: ClassVar[bool] = True


class TlsError(ConnectionFailedError):
    """The TLS handshake failed: ``https://`` to a plain-HTTP server, or a certificate not trusted.

    Not retryable: the next attempt would meet the same server and certificate.
    """

    retryable: ClassVar[bool] = False


class InvalidSettingsError(UpdlError):
    """A setting is unusable: a malformed URL, an unreadable config file, an unknown profile."""


class SourceChangedError(UpdlError):
    """The local file changed (size, mtime or ctime) while it was being uploaded; nothing was stored.

    Retryable: the next attempt reads the file again, so a file that was
    rewritten once is sent whole; one still changing fails after the retries.
    Not an ``OSError`` on purpose: urllib3 would take it for a broken connection.
    """

    retryable: ClassVar[bool] = True


class UploadBusyError(UpdlError):
    """Another request is appending to the same resumable upload right now (423); try again shortly.

    ``retry_after`` is the server's ``Retry-After``: by then a stalled writer has let go.
    """

    retryable: ClassVar[bool] = True


class ProtocolError(UpdlError):
    """The server's answer contradicts itself or what it said before.

    A body longer than the size announced, a size other than the one listed
    (the file changed meanwhile), a listing that repeats a cursor or a page.
    Not retryable: asking again gets the same answer, and the client must
    never let a server fill the disk or loop forever.
    """


class UnsafeNameError(UpdlError):
    """A remote name that would be written outside the output directory, or is not a portable path."""


class SelectionError(UpdlError):
    """The arguments cannot be turned into a list of files (a directory without ``-r``, a path outside)."""


class NoFilesError(UpdlError):
    """Nothing matched: no file selected for upload, or no file under the prefix to download."""


class TooManyDeletionsError(UpdlError):
    """``sync`` with ``delete`` would remove more than the threshold allows, and ``force`` was not given.

    Nothing was transferred or deleted. ``deletions`` lists the names it would have removed.
    """

    def __init__(self, message: str, deletions: Sequence[str]) -> None:
        super().__init__(message)
        self.deletions = list(deletions)


class ManifestError(UpdlError):
    """A manifest line cannot be read (not ``<hex>  <path>``), or digests of different lengths are mixed."""


class MissingFilesError(UpdlError, FileNotFoundError):
    """Files a manifest lists do not exist (``verify``: MISSING)."""


class BatchFailedError(UpdlError):
    """Every file of a batch failed; ``errors`` holds each file's error."""

    def __init__(self, message: str, errors: Sequence[BaseException]) -> None:
        super().__init__(message)
        self.errors = list(errors)


class PartialFailureError(BatchFailedError):
    """Some files of a batch were transferred (or skipped) and some failed."""


class ConfigWarning(UserWarning):
    """A config file setting is ignored (an unknown key, e.g. ``tokn``); the message names file and profile."""
