#!/usr/bin/env bash
# Install what tests/browser drives: Debian's Chromium (apt-get, only if /usr/bin/chromium is
# missing). Playwright itself comes with the test extra (pip install -e ".[test]"); its own
# browser download (`playwright install`) is not used: the tests point it at /usr/bin/chromium.
# Idempotent and quiet: prints nothing unless it installs something or fails.
set -euo pipefail
say() { echo "install-browser: $*" >&2; }

[ -x /usr/bin/chromium ] && exit 0
if [ "$(id -u)" != 0 ]; then
    say "chromium is missing; installing it needs root: apt-get install chromium"
    exit 1
fi
say "installing chromium with apt-get ..."
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
{ apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; } \
    >"$log" 2>&1 || { cat "$log" >&2; say "apt-get failed"; exit 1; }
