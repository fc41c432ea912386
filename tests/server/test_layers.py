"""Import rules of the server: the client is not a dependency, storage and the tus state
machine are not web code."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import updl_server

PACKAGE = Path(updl_server.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports anywhere (lazy imports inside functions too), absolute."""
    package = ".".join(("updl_server", *path.relative_to(PACKAGE).parent.parts))
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                found.add(f"{base}.{node.module}" if node.module else base)
            else:
                found.add(node.module or "")
    return found


def from_package(modules: set[str], package: str) -> set[str]:
    return {m for m in modules if m == package or m.startswith(f"{package}.")}


def test_server_imports_nothing_from_the_client() -> None:
    for path in PACKAGE.rglob("*.py"):
        assert from_package(imported_modules(path), "updl") == set(), path


def test_storage_imports_nothing_from_starlette() -> None:
    for path in (PACKAGE / "storage").glob("*.py"):
        assert from_package(imported_modules(path), "starlette") == set(), path
    # Nor through what it imports: load every storage module in a fresh interpreter.
    code = (
        "import sys, updl_server.storage, updl_server.storage.s3; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('starlette', 'updl')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_tus_state_machine_and_protocol_import_nothing_from_starlette() -> None:
    for name in ("service.py", "protocol.py"):
        path = PACKAGE / "tus" / name
        assert from_package(imported_modules(path), "starlette") == set(), path
