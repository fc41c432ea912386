#!/usr/bin/env bash
# Install the public clients that tests/interop drives against updl-server: curl, wget, aria2c and
# Node.js with npm (Debian packages, each only if its command is missing), then tus-js-client at the
# version pinned in tests/interop/package-lock.json (`npm ci`, only if it is not installed yet).
# Idempotent and quiet: prints nothing unless it installs something or fails.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "install-interop-tools: $*" >&2; }

missing=()
for pair in curl:curl wget:wget aria2c:aria2 node:nodejs npm:npm; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        say "missing ${missing[*]}; installing needs root: apt-get install ${missing[*]}"
        exit 1
    fi
    say "installing ${missing[*]} with apt-get ..."
    log="$(mktemp)"
    trap 'rm -f "$log"' EXIT
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
        >"$log" 2>&1 || { cat "$log" >&2; say "apt-get failed"; exit 1; }
fi

# npm ci wipes node_modules first, so run it only when the pinned version is not what is there.
cd tests/interop
if ! node -e '
    const want = require("./package-lock.json").packages["node_modules/tus-js-client"].version;
    process.exit(require("./node_modules/tus-js-client/package.json").version === want ? 0 : 1);
' 2>/dev/null; then
    say "installing tus-js-client with npm ci ..."
    npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
