# Sourced by scripts/test and scripts/bench: start_throwaway_postgres [extra server options]
# starts a PostgreSQL cluster in a temp directory, as the postgres user when run as root,
# on 127.0.0.1 with a free port, stops it when the calling script exits, and sets
# KOPEK_PG_URL to its URL.

. "$(dirname "${BASH_SOURCE[0]}")/at_exit.sh"

as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_throwaway_postgres() {
    bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
        echo "$0: PostgreSQL's server is not installed (apt-get install postgresql)." >&2
        exit 1
    fi
    pgdir=$(mktemp -d /tmp/kopek-pg.XXXXXX)
    [ "$(id -u)" = 0 ] && chown postgres "$pgdir"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_postgres "$bindir/initdb" -D "$pgdir/data" -U kopek --auth=trust >/dev/null
    as_postgres "$bindir/pg_ctl" -D "$pgdir/data" -l "$pgdir/log" -w \
        -o "-p $port -k $pgdir -c listen_addresses=127.0.0.1 $*" start >/dev/null
    at_exit 'as_postgres "$bindir/pg_ctl" -D "$pgdir/data" -m fast stop >/dev/null; rm -rf "$pgdir"'
    KOPEK_PG_URL="postgres://kopek@127.0.0.1:$port/postgres"
}
