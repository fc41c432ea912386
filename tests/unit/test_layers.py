"""Layering rules that are cheap to check: the SDK needs no UI library, the tqdm adapter is absolute."""

from __future__ import annotations

import ast
import io
import subprocess
import sys
from pathlib import Path

import updl
from updl.sdk.progress import ProgressEvent, tqdm_progress


def test_sdk_imports_no_ui_library() -> None:
    code = (
        "import sys, updl, updl.sdk; print(sorted({m.split('.')[0] for m in sys.modules} & {'rich', 'tqdm', 'click'}))"
    )
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


UPDL = Path(updl.__file__).parent


def imports_of(path: Path) -> list[tuple[str, bool]]:
    """Each module ``path`` imports (absolute, dotted) and whether the import is at module level."""
    package = ".".join(path.relative_to(UPDL.parent).with_suffix("").parts[:-1])
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            found += [
                (f"{module}.{alias.name}" if node.module is None else module, id(node) in top) for alias in node.names
            ]
    return found


def test_the_sdk_never_imports_click_or_rich_and_tqdm_only_lazily_in_progress() -> None:
    for path in sorted((UPDL / "sdk").glob("*.py")):
        for module, at_top in imports_of(path):
            root = module.split(".")[0]
            assert root not in ("click", "rich"), f"{path.name} imports {module}"
            if root == "tqdm":
                assert path.name == "progress.py" and not at_top, f"{path.name} imports tqdm at module level"


def test_the_client_package_has_no_import_cycle() -> None:
    """Module-level imports between updl's own modules form no cycle (the SDK never imports the CLI)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(UPDL.rglob("*.py")):
        name = ".".join(path.relative_to(UPDL.parent).with_suffix("").parts).removesuffix(".__init__")
        graph[name] = set()
    for path in sorted(UPDL.rglob("*.py")):
        name = ".".join(path.relative_to(UPDL.parent).with_suffix("").parts).removesuffix(".__init__")
        for module, at_top in imports_of(path):
            while module and module not in graph:
                module = module.rpartition(".")[0]
            if at_top and module and module != name and not name.startswith(module + "."):
                graph[name].add(module)  # a package importing its own children is no cycle
    for name, targets in graph.items():
        if name.startswith("updl.sdk"):
            assert not {t for t in targets if not t.startswith("updl.sdk")}, f"{name} imports {targets}"
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        assert name not in visiting, "import cycle: " + " -> ".join([*visiting[visiting.index(name) :], name])
        if name in done:
            return
        visiting.append(name)
        for target in sorted(graph[name]):
            visit(target)
        visiting.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)
