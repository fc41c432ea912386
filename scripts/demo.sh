#!/usr/bin/env bash
# The main job, end to end, on a fresh machine: install updl and updl-server into .venv, start the server on
# its embedded defaults (SQLite + local disk, in a temporary data dir), create a user, then upload, list and
# download a 20 MiB file with `updl`, each step verified by MD5. Everything is cleaned up at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e . -e ./server
export PATH="$PWD/.venv/bin:$PATH"

work="$(mktemp -d)"
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

echo "== starting updl-server (data dir $work/data)"
updl-server run --port 0 --data-dir "$work/data" --log-level warning >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
  grep -q "listening on" "$work/server.log" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; exit 1; }
  sleep 0.1
done
UPDL_URL="$(grep -o 'http://[^ ]*' "$work/server.log" | head -n 1)"
[ -n "$UPDL_URL" ] || { echo "server did not start"; cat "$work/server.log"; exit 1; }
export UPDL_URL
UPDL_TOKEN="$(updl-server add-user demo --data-dir "$work/data")"
export UPDL_TOKEN
echo "== server at $UPDL_URL, user 'demo' created"

python3 -c "import os,sys; open(sys.argv[1],'wb').write(os.urandom(20*1024*1024))" "$work/demo.bin"

echo "== updl put"
updl put "$work/demo.bin" --name demo/demo.bin
echo "== updl ls"
updl ls demo/
echo "== updl get"
updl get demo/demo.bin -o "$work/downloaded.bin"
echo "== SDK example"
.venv/bin/python examples/sdk_example.py "$work/demo.bin"

.venv/bin/python - "$work/demo.bin" "$work/downloaded.bin" <<'PY'
import hashlib, sys
a, b = (hashlib.file_digest(open(p, "rb"), "md5").hexdigest() for p in sys.argv[1:3])
assert a == b, f"md5 differs: {a} != {b}"
print(f"== downloaded file matches the original: md5 {a}")
PY
