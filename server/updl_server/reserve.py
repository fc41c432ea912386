"""Space held back on the database's disk, so that deleting files still works when it is full.

SQLite appends every transaction to its write-ahead log, so on a full disk
even the ``DELETE`` that would free space fails. The catalog keeps a small
file next to a SQLite database, gives it up when a delete cannot be recorded
otherwise, and makes it again once there is room (before the next delete).
Several server processes may share one reserve; it is only ever best effort.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from sqlalchemy.engine import make_url

RESERVE_BYTES = 1024 * 1024  # a delete writes a few pages of log: ample


class SpaceReserve:
    """A file of ``RESERVE_BYTES`` at ``path`` (``None``: the database is not a local file)."""

    def __init__(self, path: Path | None) -> None:
        """Manage the reserve at ``path``; nothing is written until ``keep``."""
        self.path = path

    @classmethod
    def for_database(cls, url: str) -> SpaceReserve:
        """The reserve beside a SQLite database file; none for other databases or in memory."""
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
            return cls(None)
        return cls(Path(f"{parsed.database}-reserve"))

    def keep(self) -> None:
        """Make the reserve if it is missing and there is room to spare; never raises."""
        if self.path is None or self.path.exists():
            return
        temp = self.path.with_name(f"{self.path.name}.{os.getpid()}.{threading.get_ident()}")
        try:
            disk = os.statvfs(self.path.parent)
            if disk.f_bavail * disk.f_frsize < 2 * RESERVE_BYTES:
                return  # trying would take the last free bytes from every other writer
            with open(temp, "wb") as out:
                out.write(bytes(RESERVE_BYTES))  # written, not sparse: the blocks are taken
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, self.path)  # whole or absent, whoever else is making it
        except OSError:
            temp.unlink(missing_ok=True)

    def release(self) -> bool:
        """Delete the reserve; whether there was one to give up."""
        if self.path is None:
            return False
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True
