# Sourced by scripts/test and scripts/fuzz-api: `start_throwaway_pg` starts a throwaway
# PostgreSQL cluster on loopback (a free port, fsync off), exports
# PICA_TEST_DATABASE_URL, and removes the cluster when the calling script exits (a
# caller with its own EXIT trap sets PG_OWN_TRAP=1 and calls stop_throwaway_pg there).
# With PG_DURABLE=1 (the benchmarks) the cluster keeps PostgreSQL's durable defaults
# (fsync, synchronous_commit, full_page_writes on) and gets 256 MB of shared buffers.

pg_bin() {
    for dir in /usr/lib/postgresql/*/bin; do
        [ -x "$dir/initdb" ] && { echo "$dir"; return; }
    done
    command -v initdb >/dev/null && dirname "$(command -v initdb)"
}

start_throwaway_pg() {
    PG_BIN=$(pg_bin || true)
    if [ -z "$PG_BIN" ]; then
        echo "PostgreSQL (initdb) not found: install postgresql-15, or set PICA_TEST_DATABASE_URL" >&2
        return 1
    fi
    # PostgreSQL refuses to run as root: run the cluster as the postgres user then.
    AS_PG=()
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --home /var/lib/postgresql postgres
        AS_PG=(runuser -u postgres --)
    fi
    PGDIR=$(mktemp -d /tmp/pica-pg.XXXXXX)
    [ "$(id -u)" = 0 ] && chown postgres "$PGDIR"
    # A free port, so that several runs (or another PostgreSQL) can coexist.
    local port=${PICA_TEST_PG_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 55432)}
    [ -n "${PG_OWN_TRAP:-}" ] || trap stop_throwaway_pg EXIT
    local speed="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    [ -z "${PG_DURABLE:-}" ] || speed="-c shared_buffers=256MB"
    "${AS_PG[@]}" "$PG_BIN/initdb" -D "$PGDIR/data" -U postgres -A trust --no-sync >/dev/null
    "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w -o \
        "-c listen_addresses=127.0.0.1 -p $port -k $PGDIR -c max_connections=300 $speed" \
        start >/dev/null
    export PICA_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
    echo "throwaway PostgreSQL at $PICA_TEST_DATABASE_URL"
}

stop_throwaway_pg() {
    [ -n "${PGDIR:-}" ] || return 0
    "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PGDIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PGDIR"
}
