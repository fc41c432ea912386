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


def test_updl_and_sdk_export_the_same_names() -> None:
    import updl
    import updl.sdk

    assert set(updl.__all__) - {"__version__"} == set(updl.sdk.__all__)
    for name in updl.sdk.__all__:
        assert getattr(updl, name) is getattr(updl.sdk, name), name


def test_every_sdk_exception_lives_in_errors() -> None:
    import importlib
    import pkgutil

    import updl.sdk
    from updl.sdk import errors

    for module_info in pkgutil.iter_modules(updl.sdk.__path__):
        module = importlib.import_module(f"updl.sdk.{module_info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Exception) and value.__module__.startswith("updl"):
                assert value.__module__ == errors.__name__, f"{value.__qualname__} is defined in {value.__module__}"
