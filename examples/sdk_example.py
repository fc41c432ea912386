"""Upload a file with the updl SDK, list it, download it again and check it.

Run against a reference server (see README.md), with the server and token in the environment:

    UPDL_URL=http://127.0.0.1:8000 UPDL_TOKEN=... python examples/sdk_example.py FILE
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import updl


def main(path: Path) -> None:
    with updl.Client() as client:  # URL and token come from UPDL_URL / UPDL_TOKEN or the config file
        stored = client.upload(path, f"examples/{path.name}", progress=True)
        print(f"stored {stored.name}: {stored.size} bytes, md5 {stored.md5}")

        for info in client.list(prefix="examples/"):
            print(f"  {info.name}  {info.size}  {info.md5}")

        with tempfile.TemporaryDirectory() as tmp:
            # download() verifies the MD5 before the file appears at the destination.
            fetched = client.download(stored.name, Path(tmp) / path.name, progress=True)
            print(f"downloaded and verified {fetched.name}: md5 {fetched.md5}")

        client.delete(stored.name)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python examples/sdk_example.py FILE")
    main(Path(sys.argv[1]))
