"""Every install instruction installs what we publish: our repository, never a PyPI name we do not own."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted((ROOT / "examples").iterdir()),
    *sorted((ROOT / "scripts").glob("*.sh")),
    ROOT / "server" / "updl_server" / "cli.py",
]
PIP_INSTALL = re.compile(r"pip install ([^`\n\"]+(?:\"[^\"\n]*\"[^`\n]*)?)")
# "updl" on PyPI is an unrelated project (a UniFi Protect archiver); ours are not published.
OURS = re.compile(r"updl", re.IGNORECASE)


def _requirements(line: str) -> list[str]:
    words = shlex.split(line.split("#", 1)[0], posix=True)
    return [w for w in words if not w.startswith("-")]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_install_instructions_name_no_pypi_package_of_ours(document: Path) -> None:
    for match in PIP_INSTALL.finditer(document.read_text(encoding="utf-8")):
        for requirement in _requirements(match.group(1).strip().strip("'")):
            local = requirement.startswith((".", "/", "dist/")) or "git+https://" in requirement
            assert local or not OURS.search(requirement), (
                f"{document.name}: `pip install {match.group(1).strip()}` installs {requirement!r} from PyPI"
            )


def test_distribution_name_is_not_the_unrelated_pypi_updl() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "updl-client"
    assert project["scripts"]["updl"] == "updl.cli:main"  # the command keeps its name
