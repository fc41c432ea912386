#!/usr/bin/env bash
# Run the test suite on a fresh machine: make .venv, install updl, updl-server and the test tools, run pytest.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/unit -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]" -e ./server
exec .venv/bin/python -m pytest "$@"
