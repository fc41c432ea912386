"""Resumable uploads over tus 1.0 (https://tus.io/protocols/resumable-upload).

Supported extensions: creation, creation-with-upload, checksum (``md5``,
``sha1``, ``sha256``, ``crc32`` per PATCH), termination, expiration,
concatenation (:mod:`.concat`); plus
updl's ``Upload-Md5`` (the whole file's MD5, see docs/api.md).

- :mod:`.protocol`: header parsing and error answers (no state);
- :mod:`.service`: the state machine over the catalog and the store's staging
  area (never sees a request);
- :mod:`.routes`: thin Starlette handlers under ``/tus/``.
"""
