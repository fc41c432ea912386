"""Settings: where the server is, the token, and how patient to be.

Resolved in this order: explicit value (flag) > environment > config file >
default. The environment and the config file are read when
:func:`load_settings` is called, never at import. Each :class:`Settings`
records where its URL and token came from so messages can say so without
printing the token.

Config file (TOML; ``UPDL_CONFIG`` overrides its path)::

    [default]
    url = "https://updl.example.com"
    token = "..."
    retries = 5
    timeout = 60          # or [connect, read]
    resumable_threshold = "64MiB"   # files at least this big go over tus (0: always)
    parallel_parts = 1              # resumable uploads as this many parallel parts (1-8)
    resumable_chunk_size = 0        # bytes per tus PATCH; 0: one streamed PATCH (see sdk/tus.py)
    download_connections = 4        # parallel ranged GETs for a download of 64 MiB or more (1: one stream)
    ca_bundle = "~/updl-ca.pem"     # trust this CA (PEM) instead of the system's: a self-signed server
    checksum = "sha256"             # also claim and check SHA-256 (default: md5 only)
    dedup = true                    # offer digests first; content the server holds is linked (default)

    [ci]
    url = "http://10.0.0.5:8000"
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs

from .errors import ConfigWarning, InvalidSettingsError

__all__ = [
    "DEFAULT_TIMEOUT",
    "DEFAULT_URL",
    "Settings",
    "config_file",
    "default_config_path",
    "format_size",
    "load_settings",
    "parse_size",
]

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_PROFILE = "default"
DEFAULT_RETRIES = 3
#: (connect, read) seconds.
DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 300.0)

Timeout = float | tuple[float, float]
MIB = 1024 * 1024
DEFAULT_RESUMABLE_THRESHOLD = 64 * MIB
DEFAULT_PARALLEL_PARTS = 1  # see docs/benchmarks.md, "Parallel parts"
MAX_PARALLEL_PARTS = 8
#: 0: stream the file in one PATCH (plus a checksummed 1 MiB tail), not chunk by chunk (sdk/tus.py).
DEFAULT_RESUMABLE_CHUNK_SIZE = 0
#: Parallel ranged GETs of one big download (sdk/ranged.py); docs/benchmarks.md has the figures.
DEFAULT_DOWNLOAD_CONNECTIONS = 4
MAX_DOWNLOAD_CONNECTIONS = 16
KNOWN_KEYS = (
    "url",
    "token",
    "retries",
    "timeout",
    "resumable_threshold",
    "resumable_chunk_size",
    "ca_bundle",
    "parallel_parts",
    "download_connections",
    "checksum",
    "dedup",
)
#: The digests a transfer can claim and check (``checksum``): MD5 always, SHA-256 on request.
CHECKSUMS = ("md5", "sha256")
_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]?)(i?)(b?)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Settings:
    """Resolved client settings; ``*_source`` says where each value came from."""

    url: str = DEFAULT_URL
    token: str | None = field(default=None, repr=False)
    profile: str = DEFAULT_PROFILE
    timeout: Timeout = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    url_source: str = "default"
    token_source: str = "not set"
    resumable_threshold: int = DEFAULT_RESUMABLE_THRESHOLD
    resumable_chunk_size: int = DEFAULT_RESUMABLE_CHUNK_SIZE
    #: Resumable uploads go as this many parallel tus parts, joined by the server (1: one upload).
    parallel_parts: int = DEFAULT_PARALLEL_PARTS
    #: PEM file (or OpenSSL hashed directory) of the CAs to trust for ``https://``, instead of
    #: the default store; ``None``: requests' default (certifi, or ``REQUESTS_CA_BUNDLE``).
    ca_bundle: str | None = None
    ca_bundle_source: str = "not set"
    #: A download of at least 64 MiB to a path goes over this many ranged GETs at once (1: one stream).
    download_connections: int = DEFAULT_DOWNLOAD_CONNECTIONS
    #: ``md5`` or ``sha256``: the digest uploads claim besides MD5 and downloads check on disk.
    checksum: str = "md5"
    #: Offer a file's digests before uploading it, so content the server holds is linked, not sent.
    dedup: bool = True


def parse_size(value: int | str) -> int:
    """A byte count from an int or ``"64MiB"``/``"500M"``/``"1048576"`` (K/M/G/T: 1000s, KiB...: 1024s)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"not a size: {value!r} (must be >= 0)")
        return value
    match = _SIZE.match(str(value))
    if match is None or (match.group(3) and not match.group(2)):
        raise ValueError(f"not a size: {value!r} (use bytes or a suffix like 64MiB, 500M)")
    digits, unit, binary, _ = match.groups()
    powers = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}
    return int(digits) * int((1024 if binary else 1000) ** powers[unit.lower()])  # int ** int is typed Any


_IEC_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")


def format_size(size: int, unit_of: int | None = None) -> str:
    """``size`` bytes for people, in binary (IEC) units: ``1023 B``, ``20.0 MiB``, ``1.5 GiB``.

    The one size format of updl (CLI lines, bars, the SDK's tqdm bar, error messages): binary
    because sizes people configure are (``64MiB`` chunks, ``10GiB`` limits), and a limit of
    1048576 bytes must read ``1.0 MiB``, not ``1.0 MB``. ``unit_of`` takes the unit from another
    number, for ``2.0/5.0 MiB``.
    """
    reference = size if unit_of is None else unit_of
    if reference < 1024:
        return f"{size} B"
    for exponent, unit in enumerate(_IEC_UNITS, start=1):
        if reference < 1024 ** (exponent + 1) or unit == _IEC_UNITS[-1]:
            return f"{size / 1024**exponent:.1f} {unit}"
    raise AssertionError("unreachable")


def _check_size(value: Any, key: str, source: str, minimum: int) -> int:
    try:
        size = parse_size(value)
    except ValueError as exc:
        raise InvalidSettingsError(f"{key}: {exc} (from {source})") from None
    if size < minimum:
        raise InvalidSettingsError(f"{key} must be at least {minimum} bytes (from {source})")
    return size


def check_connections(value: Any, source: str) -> int:
    """A ``download_connections`` value: an integer from 1 to ``MAX_DOWNLOAD_CONNECTIONS``."""
    if type(value) is not int or not 1 <= value <= MAX_DOWNLOAD_CONNECTIONS:
        raise InvalidSettingsError(
            f"download_connections must be an integer from 1 to {MAX_DOWNLOAD_CONNECTIONS}, "
            f"not {value!r} (from {source})"
        )
    return value


def default_config_path() -> Path:
    """``<user config dir>/updl/config.toml`` (honours ``XDG_CONFIG_HOME`` when called)."""
    return platformdirs.user_config_path("updl") / "config.toml"


def config_file(
    environ: Mapping[str, str] | None = None, config_path: str | os.PathLike[str] | None = None
) -> tuple[Path, bool]:
    """The config file to use and whether it was named (``config_path``, then ``UPDL_CONFIG``) or is the default."""
    env = os.environ if environ is None else environ
    if config_path is not None:
        return Path(config_path), True
    if env.get("UPDL_CONFIG"):
        return Path(env["UPDL_CONFIG"]), True
    return default_config_path(), False


def _read_config(path: Path, explicit: bool) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        if explicit:
            raise InvalidSettingsError(f"config file {path} (from UPDL_CONFIG) does not exist") from None
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise InvalidSettingsError(f"config file {path} is not valid TOML: {exc}") from exc
    except OSError as exc:
        raise InvalidSettingsError(f"cannot read config file {path}: {exc.strerror}") from exc


def _check_url(url: str, source: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidSettingsError(
            f"invalid server URL {url!r} (from {source}); expected http://HOST[:PORT] or https://..."
        )
    return url.rstrip("/")


def _check_retries(value: Any, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidSettingsError(f"retries must be a whole number >= 0, got {value!r} (from {source})")
    return value


def _check_parts(value: Any, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PARALLEL_PARTS:
        raise InvalidSettingsError(
            f"parallel_parts must be a whole number from 1 to {MAX_PARALLEL_PARTS}, got {value!r} (from {source})"
        )
    return value


def _check_timeout(value: Any, source: str) -> Timeout:
    def positive(x: Any) -> bool:
        return isinstance(x, int | float) and not isinstance(x, bool) and x > 0

    if positive(value):
        return float(value)
    if isinstance(value, list | tuple) and len(value) == 2 and all(positive(x) for x in value):
        return (float(value[0]), float(value[1]))
    raise InvalidSettingsError(f"timeout must be seconds > 0 or [connect, read], got {value!r} (from {source})")


def _check_ca_bundle(value: Any, source: str) -> str:
    """An existing file or directory; requests would only fail at the first request, with an OSError."""
    if not isinstance(value, str) or not value:
        raise InvalidSettingsError(f"ca_bundle must be the path of a PEM file, got {value!r} (from {source})")
    path = Path(value).expanduser()
    if not path.exists():
        raise InvalidSettingsError(f"CA bundle {path} (from {source}) does not exist")
    return str(path)


def _warn_unknown_keys(config: Mapping[str, Any], section: Mapping[str, Any], path: Path, profile: str) -> None:
    """One :class:`ConfigWarning` per key that would be ignored: a typo must not pass silently."""
    for key in section:
        if key not in KNOWN_KEYS:
            close = difflib.get_close_matches(key, KNOWN_KEYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (known keys: {', '.join(KNOWN_KEYS)})"
            warnings.warn(
                ConfigWarning(f"config file {path} [{profile}]: unknown key {key!r} ignored{hint}"), stacklevel=3
            )
    for key, value in config.items():
        if not isinstance(value, dict):
            warnings.warn(
                ConfigWarning(
                    f"config file {path}: {key!r} is outside any [profile] table and "
                    f"is ignored; put it under [{DEFAULT_PROFILE}]"
                ),
                stacklevel=3,
            )


def load_settings(
    url: str | None = None,
    token: str | None = None,
    profile: str | None = None,
    *,
    ca_bundle: str | None = None,
    environ: Mapping[str, str] | None = None,
    config_path: str | os.PathLike[str] | None = None,
) -> Settings:
    """Resolve settings: arguments > ``UPDL_URL``/``UPDL_TOKEN``/``UPDL_PROFILE``/``UPDL_CA_BUNDLE``
    > config file > defaults.

    ``environ`` defaults to ``os.environ`` (read now); ``config_path`` to
    ``UPDL_CONFIG`` or :func:`default_config_path`. Naming a profile that the
    config file lacks raises :class:`InvalidSettingsError`.
    """
    env = os.environ if environ is None else environ

    if profile:
        profile_name, profile_explicit = profile, True
    elif env.get("UPDL_PROFILE"):
        profile_name, profile_explicit = env["UPDL_PROFILE"], True
    else:
        profile_name, profile_explicit = DEFAULT_PROFILE, False

    path, path_explicit = config_file(env, config_path)

    config = _read_config(path, path_explicit)
    section = config.get(profile_name)
    if section is None:
        if profile_explicit:
            known = ", ".join(sorted(k for k, v in config.items() if isinstance(v, dict))) or "none"
            raise InvalidSettingsError(f"no profile [{profile_name}] in config file {path} (profiles: {known})")
        section = {}
    if not isinstance(section, dict):
        raise InvalidSettingsError(f"[{profile_name}] in config file {path} must be a table")
    file_source = f"config file {path} [{profile_name}]"
    _warn_unknown_keys(config, section, path, profile_name)

    if url:
        url_value, url_source = url, "flag"
    elif env.get("UPDL_URL"):
        url_value, url_source = env["UPDL_URL"], "environment (UPDL_URL)"
    elif section.get("url"):
        url_value, url_source = str(section["url"]), file_source
    else:
        url_value, url_source = DEFAULT_URL, "default"

    token_value: str | None
    if token:
        token_value, token_source = token, "flag"
    elif env.get("UPDL_TOKEN"):
        token_value, token_source = env["UPDL_TOKEN"], "environment (UPDL_TOKEN)"
    elif section.get("token"):
        token_value, token_source = str(section["token"]), file_source
    else:
        token_value, token_source = None, "not set"

    bundle_value: str | None
    if ca_bundle:
        bundle_value, bundle_source = ca_bundle, "flag"
    elif env.get("UPDL_CA_BUNDLE"):
        bundle_value, bundle_source = env["UPDL_CA_BUNDLE"], "environment (UPDL_CA_BUNDLE)"
    elif "ca_bundle" in section:
        bundle_value, bundle_source = section["ca_bundle"], file_source
    else:
        bundle_value, bundle_source = None, "not set"

    threshold = (
        _check_size(section["resumable_threshold"], "resumable_threshold", file_source, 0)
        if "resumable_threshold" in section
        else DEFAULT_RESUMABLE_THRESHOLD
    )
    chunk_size = (
        _check_size(section["resumable_chunk_size"], "resumable_chunk_size", file_source, 0)
        if "resumable_chunk_size" in section
        else DEFAULT_RESUMABLE_CHUNK_SIZE
    )
    connections = (
        check_connections(section["download_connections"], file_source)
        if "download_connections" in section
        else DEFAULT_DOWNLOAD_CONNECTIONS
    )
    retries = _check_retries(section["retries"], file_source) if "retries" in section else DEFAULT_RETRIES
    parts = (
        _check_parts(section["parallel_parts"], file_source) if "parallel_parts" in section else DEFAULT_PARALLEL_PARTS
    )
    timeout = _check_timeout(section["timeout"], file_source) if "timeout" in section else DEFAULT_TIMEOUT
    checksum = section.get("checksum", "md5")
    if checksum not in CHECKSUMS:
        raise InvalidSettingsError(
            f"checksum must be one of {', '.join(CHECKSUMS)}, got {checksum!r} (from {file_source})"
        )
    dedup = section.get("dedup", True)
    if not isinstance(dedup, bool):
        raise InvalidSettingsError(f"dedup must be true or false, got {dedup!r} (from {file_source})")

    return Settings(
        url=_check_url(url_value, url_source),
        token=token_value,
        profile=profile_name,
        timeout=timeout,
        retries=retries,
        url_source=url_source,
        token_source=token_source,
        resumable_threshold=threshold,
        resumable_chunk_size=chunk_size,
        parallel_parts=parts,
        ca_bundle=None if bundle_value is None else _check_ca_bundle(bundle_value, bundle_source),
        ca_bundle_source=bundle_source,
        download_connections=connections,
        checksum=checksum,
        dedup=dedup,
    )
