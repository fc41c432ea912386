"""One size format everywhere, and what a resumed transfer says."""

from __future__ import annotations

import io

from rich.console import Console

from updl.console import PlainView, RichView, human_size
from updl.sdk.config import format_size
from updl.sdk.progress import ProgressEvent, tqdm_progress

MIB = 1024 * 1024


def test_format_size_is_binary_everywhere() -> None:
    assert [format_size(n) for n in (0, 1023, 1024, 20 * MIB, 1536 * MIB)] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "20.0 MiB",
        "1.5 GiB",
    ]
    assert format_size(5 * MIB, unit_of=20 * MIB) == "5.0 MiB"
    assert human_size(20 * MIB) == format_size(20 * MIB)


def test_sdk_bar_counts_in_the_cli_s_units() -> None:
    out = io.StringIO()
    bar = tqdm_progress("f", file=out, mininterval=0)
    for transferred in (0, 10 * MIB, 20 * MIB):
        bar(ProgressEvent("f", transferred, 20 * MIB))
    bar.close()
    assert "10.0/20.0 MiB" in out.getvalue() and "20.0/20.0 MiB" in out.getvalue()
    assert "MB" not in out.getvalue().replace("MiB", "")  # no decimal or unlabelled units beside


def test_plain_view_says_where_a_resumed_transfer_starts() -> None:
    stream = io.StringIO()
    view = PlainView(stream, clock=lambda: 0.0)
    view.begin("big.bin", "uploading")
    view.progress(ProgressEvent("big.bin", 12 * MIB, 20 * MIB))
    view.begin("new.bin", "downloading")
    view.progress(ProgressEvent("new.bin", 0, 20 * MIB))
    assert stream.getvalue().splitlines() == [
        "updl: uploading big.bin (20.0 MiB), resuming at 12.0 MiB",
        "updl: downloading new.bin (20.0 MiB)",
    ]


def test_rich_view_says_where_a_resumed_transfer_starts() -> None:
    stream = io.StringIO()
    view = RichView(Console(file=stream, width=120, force_terminal=False))
    view.begin("big.bin", "downloading")
    view.progress(ProgressEvent("big.bin", 12 * MIB, 20 * MIB))
    view.progress(ProgressEvent("big.bin", 13 * MIB, 20 * MIB))
    view.close()
    assert stream.getvalue().count("updl: big.bin: resuming at 12.0 MiB") == 1
