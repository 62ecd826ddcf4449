# Sourced by scripts/bench-restart and scripts/bench-big-space: fills a migrated, empty
# database with the generated big space, on either backend.
#
# fill_big_space DATABASE_URL ZONES SEATS ACTIVE HISTORY
#   sqlite:PATH runs scripts/lib/big-space.sql through sqlite3; postgres://… runs
#   scripts/lib/big-space-pg.sql through psql (PG_BIN from throwaway-pg.sh, or on PATH).
# big_space_sql DATABASE_URL QUERY prints the query's single value.

big_space_psql() {
    local psql=psql
    [ -n "${PG_BIN:-}" ] && psql="$PG_BIN/psql"
    "$psql" -X -q -v ON_ERROR_STOP=1 "$@"
}

fill_big_space() {
    local url=$1 zones=$2 seats=$3 active=$4 history=$5
    case "$url" in
        sqlite:*)
            sed -e "s/:zones/$zones/g" -e "s/:seats/$seats/g" -e "s/:active/$active/g" \
                -e "s/:history/$history/g" scripts/lib/big-space.sql | sqlite3 "${url#sqlite:}"
            ;;
        postgres://*)
            big_space_psql "$url" -v zones="$zones" -v seats="$seats" -v active="$active" \
                -v history="$history" -f scripts/lib/big-space-pg.sql >/dev/null
            ;;
        *) echo "fill_big_space: unknown database URL $url" >&2; return 1 ;;
    esac
}

big_space_sql() {
    case "$1" in
        sqlite:*) sqlite3 "${1#sqlite:}" "$2" ;;
        postgres://*) big_space_psql "$1" -A -t -c "$2" ;;
    esac
}
