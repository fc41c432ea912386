#!/usr/bin/env bash
# Run updl as a small cluster on this machine: N `updl-server run` processes on consecutive ports
# sharing one data dir and one database, behind nginx. Prints the URL; Ctrl-C (or SIGTERM) stops
# everything and removes the run directory (the data dir stays).
#
#   deploy/run-cluster.sh [-n WORKERS] [--port 8080] [--base-port 18100] [--data-dir DIR]
#                         [--db-url URL] [--max-size 10GiB]
#
# Default database: SQLite inside the data dir (fine for one machine; use PostgreSQL,
# postgresql+psycopg://..., when servers run on several machines). Needs nginx on PATH
# (Debian: apt-get install nginx) and updl-server installed (.venv/bin or PATH).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
WORKERS=2 PORT=8080 BASE_PORT=18100 DATA_DIR="" DB_URL="" MAX_SIZE=10GiB
while [ $# -gt 0 ]; do
    case "$1" in
        -n|--workers) WORKERS="$2"; shift 2 ;;
        --port) PORT="$2"; shift 2 ;;
        --base-port) BASE_PORT="$2"; shift 2 ;;
        --data-dir) DATA_DIR="$2"; shift 2 ;;
        --db-url) DB_URL="$2"; shift 2 ;;
        --max-size) MAX_SIZE="$2"; shift 2 ;;
        -h|--help) sed -n 2,12p "$0"; exit 0 ;;
        *) echo "run-cluster: unknown argument $1" >&2; exit 2 ;;
    esac
done

SERVER="$HERE/../.venv/bin/updl-server"
[ -x "$SERVER" ] || SERVER="$(command -v updl-server)" || { echo "run-cluster: updl-server not found" >&2; exit 1; }
PYTHON="$(dirname "$SERVER")/python"
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
[ -x "$NGINX" ] || { echo "run-cluster: nginx not found (apt-get install nginx)" >&2; exit 1; }

RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/updl-cluster.XXXXXX")"
chmod 755 "$RUN_DIR"   # nginx workers may run as another user
DATA_DIR="${DATA_DIR:-$RUN_DIR/data}"
mkdir -p "$DATA_DIR"
DB_URL="${DB_URL:-sqlite:///$(cd "$DATA_DIR" && pwd)/updl.db}"

PIDS=()
cleanup() {
    trap - EXIT INT TERM
    [ -f "$RUN_DIR/nginx.pid" ] && kill -QUIT "$(cat "$RUN_DIR/nginx.pid")" 2>/dev/null || true
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    case "$DATA_DIR" in "$RUN_DIR"/*) ;; *) echo "run-cluster: data kept in $DATA_DIR" >&2 ;; esac
    rm -rf "$RUN_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

UPSTREAMS=""
for ((i = 0; i < WORKERS; i++)); do
    port=$((BASE_PORT + i))
    "$SERVER" run --host 127.0.0.1 --port "$port" --data-dir "$DATA_DIR" --db-url "$DB_URL" \
        --max-size "$MAX_SIZE" --workers 1 --log-level warning 2>"$RUN_DIR/server-$port.log" &
    PIDS+=("$!")
    UPSTREAMS+="        server 127.0.0.1:$port max_fails=0;"$'\n'
done
# Wait (bounded) until every server answers /health.
for ((i = 0; i < WORKERS; i++)); do
    port=$((BASE_PORT + i))
    for ((try = 0; try < 300; try++)); do
        "$PYTHON" - "$port" <<'PY' && break
import sys, urllib.request
try:
    urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/health", timeout=1)
except OSError:
    sys.exit(1)
PY
        kill -0 "${PIDS[$i]}" 2>/dev/null || { cat "$RUN_DIR/server-$port.log" >&2; exit 1; }
        sleep 0.1
    done
done

MAX_BYTES="$("$PYTHON" -c "from updl_server.config import parse_size; import sys; print(parse_size(sys.argv[1]))" "$MAX_SIZE")"
sed -e "s|@RUN_DIR@|$RUN_DIR|g" -e "s|@LISTEN@|127.0.0.1:$PORT|g" \
    -e "s|@MAX_BODY@|$((MAX_BYTES + 1048576))|g" -e "s|@MAX_SIZE@|$MAX_BYTES|g" \
    "$HERE/nginx.conf.template" | awk -v up="$UPSTREAMS" '{ if ($0 == "@UPSTREAMS@") printf "%s", up; else print }' \
    > "$RUN_DIR/nginx.conf"
"$NGINX" -t -q -c "$RUN_DIR/nginx.conf" -p "$RUN_DIR" -e "$RUN_DIR/error.log"
"$NGINX" -c "$RUN_DIR/nginx.conf" -p "$RUN_DIR" -e "$RUN_DIR/error.log" -g "daemon off;" &
PIDS+=("$!")

echo "run-cluster: $WORKERS updl-server processes (ports $BASE_PORT-$((BASE_PORT + WORKERS - 1))), data $DATA_DIR, database $DB_URL" >&2
echo "run-cluster: add a user: $SERVER add-user NAME --data-dir $DATA_DIR --db-url '$DB_URL'" >&2
echo "http://127.0.0.1:$PORT"
wait -n "${PIDS[@]}"   # any process ending (or Ctrl-C) ends the cluster
echo "run-cluster: a process exited; stopping" >&2
