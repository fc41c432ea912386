"""The version of updl: defined once, in pyproject.toml, and read here from the installed distribution.

The distribution is named ``updl-client`` (the import name stays ``updl``).
The SDK reads it for its ``User-Agent``; ``updl.__version__`` and
``updl --version`` re-export it.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["DISTRIBUTION", "__version__"]

DISTRIBUTION = "updl-client"

try:
    __version__ = version(DISTRIBUTION)
except PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "0+unknown"
