#!/usr/bin/env bash
# Vendor the browser libraries of the updl-server page (server/updl_server/web/static/vendor/).
#
# The versions are pinned in server/updl_server/web/vendor/package.json and package-lock.json;
# `npm ci` installs exactly those, and this script copies their prebuilt browser bundles and
# licence files next to the page. The copies are committed and ship inside the updl-server
# package, so the page needs no build step and no network at run time; node_modules is not
# committed. To upgrade: edit package.json, run `npm install` there, then this script, and commit.
set -euo pipefail
cd "$(dirname "$0")/../server/updl_server/web/vendor"
out=../static/vendor
npm ci --no-audit --no-fund --loglevel=error >/dev/null
rm -rf "$out"
mkdir -p "$out/licenses"
cp node_modules/tus-js-client/dist/tus.min.js "$out/tus.min.js"
cp node_modules/hash-wasm/dist/md5.umd.min.js "$out/hash-wasm-md5.umd.min.js"
# tus.min.js bundles js-base64, url-parse, querystringify and requires-port (and browserify's
# buffer, base64-js and ieee754, listed in THIRD-PARTY.txt): each licence ships with it.
for pkg in tus-js-client hash-wasm js-base64 url-parse querystringify requires-port; do
    licence=$(ls node_modules/$pkg | grep -i -m1 '^licen[cs]e')
    cp "node_modules/$pkg/$licence" "$out/licenses/$pkg-$(node -p "require('./node_modules/$pkg/package.json').version").txt"
done
node -e '
const lock = require("./package-lock.json").packages;
const lines = ["Third-party code served by the updl-server page, as vendored by scripts/vendor-web.sh.", ""];
lines.push("tus.min.js: tus-js-client " + lock["node_modules/tus-js-client"].version + " (MIT), the dist/tus.min.js browser bundle;");
lines.push("  it includes js-base64 (BSD-3-Clause), url-parse, querystringify, requires-port (MIT),");
lines.push("  and browserify'"'"'s buffer, base64-js (MIT) and ieee754 (BSD-3-Clause).");
lines.push("hash-wasm-md5.umd.min.js: hash-wasm " + lock["node_modules/hash-wasm"].version + " (MIT), dist/md5.umd.min.js.");
lines.push("", "Licence texts: licenses/<package>-<version>.txt.");
require("fs").writeFileSync(process.argv[1] + "/THIRD-PARTY.txt", lines.join("\n") + "\n");
' "$out"
echo "vendor-web: copied into server/updl_server/web/static/vendor/:" >&2
ls -R "$out" >&2
