"""Helpers shared by the tests; the fixtures that use them live in the ``conftest.py`` files.

- ``live_server``: a real ``updl-server`` process, users and tokens, the installed console scripts
- ``api``: an HTTP client for one user, hand-built multipart bodies, raw sockets, data dirs
- ``tus``: tus 1.0 requests; ``racing``: requests released together; ``relay``: trouble in transit
- ``full_disk``, ``postgres``, ``s3``: a full filesystem, a PostgreSQL cluster, moto's S3
- ``scripted`` and ``cli``: the scripted server (``responses``) and ``updl`` through CliRunner
- ``files``, ``waiting``, ``interop``: file MD5s, bounded waits, the public clients
"""
