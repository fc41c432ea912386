#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster for the tests and print the line that points them at it:
#
#   eval "$(bash scripts/start-postgres.sh)"     # sets TEST_DATABASE_URL
#   bash scripts/start-postgres.sh stop          # stops the cluster and deletes it
#
# Installs Debian's `postgresql` with apt-get only if initdb/pg_ctl are missing. The cluster lives
# in $UPDL_TEST_PG_DIR (default: /tmp/updl-test-pg), runs as the non-root `postgres` user when
# started by root, trusts local connections, listens on 127.0.0.1 only (port 54329, or a free one)
# and keeps its unix socket inside that directory. Running it again reuses a running cluster.
# Everything but the final `export ...` line goes to stderr.
set -euo pipefail

BASE="${UPDL_TEST_PG_DIR:-/tmp/updl-test-pg}"
DATA="$BASE/data"
DB=updl_test
say() { echo "start-postgres: $*" >&2; }

find_bindir() {
    local found
    found="$(command -v pg_ctl 2>/dev/null || true)"
    if [ -n "$found" ] && [ -x "$(dirname "$(readlink -f "$found")")/initdb" ]; then
        dirname "$(readlink -f "$found")"
        return
    fi
    # Debian keeps the server binaries off PATH; take the newest version installed.
    found="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [ -n "$found" ] && [ -x "$found/initdb" ] && [ -x "$found/pg_ctl" ]; then
        echo "$found"
    fi
}

BIN="$(find_bindir)"
if [ -z "$BIN" ]; then
    if [ "$(id -u)" != 0 ]; then
        say "PostgreSQL is not installed and installing it needs root (apt-get install postgresql)"
        exit 1
    fi
    say "installing PostgreSQL with apt-get ..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
    BIN="$(find_bindir)"
    [ -n "$BIN" ] || { say "apt-get installed postgresql but initdb was not found"; exit 1; }
fi

# The server refuses to run as root: as root, run every cluster command as `postgres`.
if [ "$(id -u)" = 0 ]; then
    if ! id postgres >/dev/null 2>&1; then
        useradd --system --home-dir "$BASE" --shell /bin/bash postgres
    fi
    as_pg() { runuser -u postgres -- "$@"; }
else
    as_pg() { "$@"; }
fi

if [ "${1:-}" = stop ]; then
    if [ -f "$DATA/postmaster.pid" ]; then
        as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >&2 || true
    fi
    rm -rf "$BASE"
    say "stopped and removed $BASE"
    exit 0
fi

port_of_running() {
    # Line 4 of postmaster.pid is the port of a running server.
    if [ -f "$DATA/postmaster.pid" ] && as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
        sed -n 4p "$DATA/postmaster.pid"
    fi
}

PORT="$(port_of_running)"
if [ -z "$PORT" ]; then
    mkdir -p "$BASE"
    [ "$(id -u)" = 0 ] && chown postgres: "$BASE"
    if [ ! -f "$DATA/PG_VERSION" ]; then
        say "initialising a cluster in $DATA"
        as_pg "$BIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C \
            --no-sync >/dev/null
    fi
    PORT="$(python3 - <<'EOF'
import socket
def free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return None
        return s.getsockname()[1]
print(free(54329) or free(0))
EOF
)"
    say "starting PostgreSQL on 127.0.0.1:$PORT"
    # fsync off: a test cluster trades durability for speed. 300 connections: several servers,
    # each pooling up to 15, plus the tests' own.
    as_pg "$BIN/pg_ctl" -D "$DATA" -l "$BASE/server.log" -w -t 60 start \
        -o "-p $PORT -k $BASE -c listen_addresses=127.0.0.1 -c fsync=off \
            -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" >&2 \
        || { say "PostgreSQL did not start; its log:"; cat "$BASE/server.log" >&2; exit 1; }
fi

psql_pg() { as_pg "$BIN/psql" -h "$BASE" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA "$@"; }
if [ "$(psql_pg -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]; then
    psql_pg -c "CREATE DATABASE $DB" >&2
fi
say "ready: database $DB on 127.0.0.1:$PORT (stop with: bash scripts/start-postgres.sh stop)"
echo "export TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:$PORT/$DB"
