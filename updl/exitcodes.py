"""Exit codes of the ``updl`` command, and the one table mapping exceptions to them."""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum

from .sdk.errors import (
    AuthenticationError,
    BatchFailedError,
    ChecksumMismatchError,
    ConnectionFailedError,
    ForbiddenError,
    InvalidSettingsError,
    MissingFilesError,
    NoFilesError,
    NotFoundError,
    PartialFailureError,
    PreconditionFailedError,
    QuotaExceededError,
    SelectionError,
    SourceChangedError,
    TooManyDeletionsError,
    UpdlError,
)

__all__ = ["ERRORS", "ExitCode", "describe", "epilog"]


class ExitCode(IntEnum):
    """What ``updl`` exits with."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    AUTHENTICATION = 3
    NOT_FOUND = 4
    INTEGRITY = 5
    UNREACHABLE = 6
    NO_FILES = 7
    PARTIAL_FAILURE = 8
    PRECONDITION_FAILED = 9
    FORBIDDEN = 10
    QUOTA_EXCEEDED = 11
    DELETIONS_REFUSED = 12
    INTERRUPTED = 130
    BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for coreutils stopped the same way


def _os_error(exc: BaseException) -> str:
    assert isinstance(exc, OSError)
    if isinstance(exc, FileNotFoundError) and exc.filename is not None:
        return f"no such local file or directory: {exc.filename}"
    if exc.filename is not None and exc.strerror:
        return f"{exc.strerror}: {exc.filename}"
    return str(exc)


def _attempts(exc: BaseException) -> str:
    attempts = getattr(exc, "attempts", 1)
    return f"{exc} (after {attempts} attempts)" if attempts > 1 else str(exc)


# Ordered, most specific first: the first entry whose type matches wins.
ERRORS: list[tuple[type[BaseException], ExitCode, Callable[[BaseException], str], str]] = [
    (
        KeyboardInterrupt,
        ExitCode.INTERRUPTED,
        lambda e: "interrupted; run the same command again to resume",
        "interrupted (Ctrl-C)",
    ),
    (
        ForbiddenError,
        ExitCode.FORBIDDEN,
        str,
        "the token may not do that (a scope it lacks, a name outside its prefix)",
    ),
    (AuthenticationError, ExitCode.AUTHENTICATION, str, "the server rejected the token, or none was given"),
    (NotFoundError, ExitCode.NOT_FOUND, str, "no such file on the server"),
    (MissingFilesError, ExitCode.NOT_FOUND, str, "files a manifest lists are missing"),
    (
        ChecksumMismatchError,
        ExitCode.INTEGRITY,
        _attempts,
        "checksum mismatch after all retries, or against a manifest (in a batch: any file)",
    ),
    (
        PreconditionFailedError,
        ExitCode.PRECONDITION_FAILED,
        str,
        "refused, nothing stored: the name exists (--no-clobber) or is another version (--if-match)",
    ),
    (
        QuotaExceededError,
        ExitCode.QUOTA_EXCEEDED,
        str,
        "refused, nothing stored: the upload would pass your quota (507); delete files or ask for more",
    ),
    (
        TooManyDeletionsError,
        ExitCode.DELETIONS_REFUSED,
        str,
        "sync --delete would delete more than 100 files, or more than 10 and 10%; nothing changed (add --force)",
    ),
    (ConnectionFailedError, ExitCode.UNREACHABLE, _attempts, "cannot reach the server after all retries"),
    (InvalidSettingsError, ExitCode.USAGE, str, "bad configuration (URL, config file, profile)"),
    (
        SelectionError,
        ExitCode.USAGE,
        str,
        "bad file selection (a directory without -r, a glob outside the current directory)",
    ),
    (NoFilesError, ExitCode.NO_FILES, str, "no files to transfer (with --if-no-files fail, the default)"),
    (PartialFailureError, ExitCode.PARTIAL_FAILURE, str, "some files of a batch failed, others succeeded"),
    (SourceChangedError, ExitCode.FAILURE, _attempts, "a local file kept changing while it was uploaded"),
    (UpdlError, ExitCode.FAILURE, _attempts, "any other failure: too large (413), refused (400), server error (5xx)"),
    (FileNotFoundError, ExitCode.NOT_FOUND, _os_error, "no such local file"),
    (OSError, ExitCode.FAILURE, _os_error, "cannot read or write a local file"),
]


def describe(exc: BaseException) -> tuple[ExitCode, str] | None:
    """The exit code and one-line message for ``exc``, or None when the table has no entry."""
    if isinstance(exc, BatchFailedError) and not isinstance(exc, PartialFailureError):
        # Every file failed: their common code if they agree, else a plain failure.
        codes = {found[0] for found in map(describe, exc.errors) if found is not None}
        return (codes.pop() if len(codes) == 1 else ExitCode.FAILURE), str(exc)
    for kind, code, message, _ in ERRORS:
        if isinstance(exc, kind):
            return code, message(exc)
    return None


def epilog() -> str:
    """The exit-code table for ``updl --help``."""
    # "\b" keeps click from rewrapping the table.
    lines = ["Exit codes:", "", "\b", f"  {ExitCode.OK:>3}  success"]
    seen: dict[int, list[str]] = {}
    for _, kind, _, text in ERRORS:
        seen.setdefault(int(kind), []).append(text)
    seen.setdefault(int(ExitCode.USAGE), []).insert(0, "usage error")
    seen[int(ExitCode.BROKEN_PIPE)] = ["stdout was closed early (e.g. piped into head); updl stopped quietly"]
    for number in sorted(seen):
        lines.append(f"  {number:>3}  {'; '.join(seen[number])}")
    return "\n".join(lines)
