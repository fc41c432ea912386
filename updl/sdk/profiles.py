"""Writing a profile into the config file (``updl login``), keeping everything else in it.

tomlkit edits the document in place, so the user's comments, order and other
profiles survive. The file holds tokens: it is written with mode 0600 (an
existing file is tightened too), through a temporary file renamed over it,
so a crash never leaves half a config file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import tomllib
from pathlib import Path

import tomlkit
from tomlkit.exceptions import TOMLKitError

from .errors import InvalidSettingsError

__all__ = ["has_profile", "save_profile"]

FILE_MODE = 0o600


def has_profile(path: Path, profile: str) -> bool:
    """Whether the config file at ``path`` has a ``[profile]`` (a file that cannot be read: True,
    so that reading the settings reports what is wrong with it)."""
    try:
        return profile in tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return False
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return True


def save_profile(path: Path, profile: str, values: dict[str, str]) -> None:
    """Set ``values`` (e.g. ``url``, ``token``) in table ``[profile]`` of the TOML file at ``path``.

    Other keys of that table and every other table are kept; the file and its
    directory are created if missing. :class:`InvalidSettingsError` if the
    existing file is not TOML or ``[profile]`` is not a table.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    try:
        document = tomlkit.parse(text)
    except TOMLKitError as exc:
        raise InvalidSettingsError(f"config file {path} is not valid TOML ({exc}); fix it or move it away") from exc
    table = document.get(profile)
    if table is None:
        table = tomlkit.table()
        document.add(profile, table)
    elif not isinstance(table, dict):
        raise InvalidSettingsError(f"[{profile}] in config file {path} must be a table")
    for key, value in values.items():
        table[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(descriptor, FILE_MODE)  # mkstemp makes it 0600 already; say so for the reader
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(tomlkit.dumps(document))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
