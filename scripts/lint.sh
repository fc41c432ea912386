#!/usr/bin/env bash
# The checks CI runs before the tests: ruff's lint rules, ruff's format, mypy --strict over updl,
# updl_server and tests (rules and paths in pyproject.toml). Makes .venv like test.sh, with the lint extra.
# Runs every check, then fails if any failed. `ruff check --fix` and `ruff format` repair most findings.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test,lint]" -e ./server || exit 1
failed=0
.venv/bin/ruff check || failed=1
.venv/bin/ruff format --check || failed=1
.venv/bin/mypy --strict || failed=1
exit "$failed"
