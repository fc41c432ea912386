"""Formats shared by several modules, defined once: ids the server makes, MD5s, HTTP dates.

Nothing here imports Starlette or a database driver, so storage may use it too.
"""

from __future__ import annotations

import re

# A resumable upload's id: 32 lower-case hex digits (``uuid4().hex``), in URLs and staging names.
UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
