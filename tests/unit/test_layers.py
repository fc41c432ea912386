"""Layering rules that are cheap to check: the SDK needs no UI library, the tqdm adapter is absolute."""

from __future__ import annotations

import io
import subprocess
import sys

from updl.sdk.progress import ProgressEvent, tqdm_progress


def test_sdk_imports_no_ui_library() -> None:
    code = ("import sys, updl, updl.sdk; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'rich', 'tqdm', 'click'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_tqdm_adapter_sets_absolute_position() -> None:
    out = io.StringIO()
    bar = tqdm_progress("f", file=out, mininterval=0)
    for transferred in (0, 50, 100, 0, 60, 100):  # a retry restarts at 0
        bar(ProgressEvent("f", transferred, 100))
        assert bar._bar.n == transferred
    bar.close()
    assert "100/100" in out.getvalue()
