"""Batches: refusing names that would escape the output directory, digests in one pass, exit codes."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
import responses

from tests.support.scripted import URL, file_info
from updl.exitcodes import ExitCode, describe
from updl.sdk.batch import Outcome, Task, raise_for_outcomes
from updl.sdk.batch_download import destination, plan_downloads
from updl.sdk.batch_upload import plan_uploads, upload_batch
from updl.sdk.errors import AuthenticationError, BadRequestError, ChecksumMismatchError, NotFoundError, UnsafeNameError
from updl.sdk.hashing import DigestingFile
from updl.sdk.manifest import Entry
from updl.sdk.models import FileInfo
from updl.sdk.selection import select_files


@pytest.mark.parametrize(
    "name", ["../x", "a/../../x", "/etc/passwd", "C:evil", "a\\b", "a//b", "./a", "a/", "tab\there", ""]
)
def test_names_that_could_escape_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(UnsafeNameError):
        destination(tmp_path, name)


def test_symlink_out_of_the_directory_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "link").symlink_to(tmp_path)
    with pytest.raises(UnsafeNameError, match="resolves outside"):
        destination(out, "link/x")
    assert destination(out, "sub/ü x") == out / "sub" / "ü x"


def test_plan_downloads_with_manifest(tmp_path: Path) -> None:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    files = [
        FileInfo("p/a/b.bin", 1, "a" * 32, when),
        FileInfo("p/extra", 1, "b" * 32, when),
        FileInfo("p/../up", 1, "c" * 32, when),
    ]
    tasks, decided = plan_downloads(files, "p", tmp_path, [Entry("a" * 32, "a/b.bin"), Entry("d" * 32, "gone")])
    assert [(t.name, t.path, t.expected) for t in tasks] == [("p/a/b.bin", tmp_path / "a/b.bin", {"md5": "a" * 32})]
    assert sorted((o.task.name, o.status) for o in decided) == [
        ("p/../up", "failed"),
        ("p/extra", "skipped"),
        ("p/gone", "failed"),
    ]
    error = next(o.error for o in decided if o.task.name == "p/gone")
    assert error is not None
    described = describe(error)
    assert described is not None and described[0] == ExitCode.NOT_FOUND


def test_digesting_file_hashes_the_last_attempt_once() -> None:
    data = b"0123456789" * 1000
    reader = DigestingFile(io.BytesIO(data), "sha256")
    reader.read(300)
    reader.seek(0)  # a retry starts over
    while reader.read(777):
        pass
    reader.seek(0, 2)
    assert reader.complete(len(data)) and reader.hexdigest() == hashlib.sha256(data).hexdigest()


def test_upload_batch_continues_after_a_failure_and_collects_sha256(
    server: responses.RequestsMock, client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("a", "b", "c"):
        (tmp_path / name).write_bytes(name.encode() * 10)
    server.post(URL + "/upload", json=file_info("x/a", b"a" * 10))
    server.post(URL + "/upload", status=400, json={"error": "invalid name: nope"})
    server.post(URL + "/upload", json=file_info("x/c", b"c" * 10))
    tasks = plan_uploads(select_files(["a", "b", "c"]), "x")
    outcomes = upload_batch(client, tasks, algorithms=("sha256",))
    assert [(o.task.name, o.status) for o in outcomes] == [("x/a", "uploaded"), ("x/b", "failed"), ("x/c", "uploaded")]
    assert outcomes[0].digests["sha256"] == hashlib.sha256(b"a" * 10).hexdigest()
    assert isinstance(outcomes[1].error, BadRequestError)
    with pytest.raises(Exception) as raised:
        raise_for_outcomes(outcomes)
    assert describe(raised.value) == (ExitCode.PARTIAL_FAILURE, "1 of 3 files failed")


def _outcome(status: str, error: BaseException | None = None, attempts: int = 1) -> Outcome:
    return Outcome(Task("n", Path("n"), "n"), status, error=error, attempts=attempts)


def test_batch_exit_codes() -> None:
    def code(*outcomes: Outcome) -> ExitCode | None:
        try:
            raise_for_outcomes(outcomes)
        except Exception as exc:  # noqa: BLE001 - mapping whatever was raised
            found = describe(exc)
            return found[0] if found else None
        return None

    ok, bad = _outcome("uploaded"), _outcome("failed", BadRequestError("x"))
    assert code(ok, _outcome("skipped")) is None
    assert code(ok, bad) == ExitCode.PARTIAL_FAILURE
    assert code(bad, _outcome("failed", BadRequestError("y"))) == ExitCode.FAILURE
    assert code(_outcome("failed", NotFoundError("a")), _outcome("failed", NotFoundError("b"))) == ExitCode.NOT_FOUND
    assert code(ok, bad, _outcome("failed", ChecksumMismatchError("m"))) == ExitCode.INTEGRITY  # integrity wins
    assert code(ok, _outcome("failed", AuthenticationError("t")), bad) == ExitCode.AUTHENTICATION
    assert code(_outcome("failed", NotFoundError("only"))) == ExitCode.NOT_FOUND
