#!/usr/bin/env bash
# A private, throw-away PostgreSQL cluster for the ledger tests.
#
#   scripts/pg-test-cluster.sh start DIR   initdb in DIR (created if missing, must be empty),
#                                          start the server on a free loopback port, create
#                                          role and database "turnout" with a random password,
#                                          print the ledger URL on stdout
#   scripts/pg-test-cluster.sh stop DIR    stop that server and remove DIR
#   scripts/pg-test-cluster.sh halt DIR    stop that server (fast shutdown), keeping DIR
#   scripts/pg-test-cluster.sh resume DIR  start it again on the same port
#
# PostgreSQL refuses to run as root, so as root every server-side step runs as the
# `postgres` system user (DIR is handed over to it); as a normal user they run as that
# user. Exit status 3 means the PostgreSQL server binaries are not installed (tests skip
# on it); any other failure is 1. Set PG_BINDIR to use binaries from another place.
set -euo pipefail

readonly kMissingBinaries=3

fail() { echo "pg-test-cluster: $*" >&2; exit 1; }

find_bindir() {
  if [[ -n "${PG_BINDIR:-}" ]]; then
    echo "$PG_BINDIR"
    return
  fi
  # The newest installed server version (Debian: /usr/lib/postgresql/<major>/bin).
  local newest=""
  for dir in /usr/lib/postgresql/*/bin; do
    [[ -x "$dir/initdb" ]] && newest="$dir"
  done
  echo "$newest"
}

bindir=$(find_bindir)
if [[ -z "$bindir" || ! -x "$bindir/initdb" || ! -x "$bindir/pg_ctl" ]]; then
  echo "pg-test-cluster: PostgreSQL server binaries not found (install the postgresql package)" >&2
  exit "$kMissingBinaries"
fi

# Runs a command as the cluster's owner, from DIR (postgres may not enter the caller's cwd).
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    (cd "$dir" && runuser -u postgres -- "$@")
  else
    (cd "$dir" && "$@")
  fi
}

free_port() {
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 40000))
    # Nothing answers a connect on it (bash's /dev/tcp fails fast on a closed port).
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
  fail "no free port found"
}

start() {
  mkdir -p "$dir"
  [[ -z "$(ls -A "$dir")" ]] || fail "$dir is not empty"
  if [[ $(id -u) -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || fail "running as root needs the 'postgres' system user"
    chown postgres: "$dir"
    chmod 700 "$dir"
    runuser -u postgres -- test -x "$dir" || fail "the postgres user cannot enter $dir (check its parents' permissions)"
  fi
  local password
  password=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
  # Local socket connections (the setup below) are trusted; TCP (what the tests use)
  # needs the password, so tests exercise real authentication.
  as_owner "$bindir/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || fail "initdb failed: $(tail -5 "$dir/initdb.log")"
  as_owner mkdir "$dir/socket"

  local port started=""
  for _ in 1 2 3 4 5; do
    port=$(free_port)
    if as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-p $port -k $dir/socket -c listen_addresses=127.0.0.1" start >/dev/null 2>&1; then
      started=1
      break
    fi
  done
  [[ -n "$started" ]] || fail "server did not start: $(tail -5 "$dir/server.log" 2>/dev/null)"
  echo "$port" | as_owner tee "$dir/port" >/dev/null

  local psql=("$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir/socket" -p "$port" -U postgres -d postgres)
  as_owner "${psql[@]}" -c "CREATE ROLE turnout LOGIN PASSWORD '$password'" >/dev/null ||
    fail "cannot create the turnout role"
  as_owner "${psql[@]}" -c "CREATE DATABASE turnout OWNER turnout" >/dev/null ||
    fail "cannot create the turnout database"
  echo "postgresql://turnout:${password}@127.0.0.1:${port}/turnout"
}

halt() {
  [[ -d "$dir/data" ]] || fail "no cluster in $dir"
  as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || fail "the server did not stop"
}

resume() {
  [[ -d "$dir/data" && -f "$dir/port" ]] || fail "no cluster in $dir"
  local port
  port=$(cat "$dir/port")
  as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
    -o "-p $port -k $dir/socket -c listen_addresses=127.0.0.1" start >/dev/null 2>&1 ||
    fail "server did not start again: $(tail -5 "$dir/server.log" 2>/dev/null)"
}

stop() {
  if [[ -d "$dir/data" ]]; then
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}

[[ $# -eq 2 ]] || fail "usage: $0 start|stop|halt|resume DIR"
dir=$(realpath -m "$2")
case "$1" in
  start) start ;;
  stop) stop ;;
  halt) halt ;;
  resume) resume ;;
  *) fail "usage: $0 start|stop|halt|resume DIR" ;;
esac
