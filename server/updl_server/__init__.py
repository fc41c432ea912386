"""updl reference server: MD5-verified uploads and downloads over HTTP (Starlette on uvicorn)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("updl-server")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
