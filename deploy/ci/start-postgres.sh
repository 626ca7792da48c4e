#!/usr/bin/env bash
# A running PostgreSQL from Debian's packages for the tests; prints its URL on stdout.
#
#   export TAXI_TEST_PG_URL="$(deploy/ci/start-postgres.sh)"
#   deploy/ci/start-postgres.sh --no-install    # start what is there, install nothing
#   deploy/ci/start-postgres.sh --stop          # stop the cluster if this script started it
#
# A cluster this script starts is written to $TAXI_TEST_PG_STARTED (when set): the test run
# that set it stops that cluster when it ends (`--stop`, taxi_assets_tests/conftest.py), and
# leaves alone a server it found running.
# Idempotent and without prompts: installs postgresql only when it is missing
# (apt-get update first), creates a cluster only when there is none, starts it only
# when it is down, creates the role and database only when they are missing.
# Installing and starting need root (CI runs as root); a running server with the
# role in place needs nothing.
set -euo pipefail

install=1
[ "${1:-}" = "--no-install" ] && install=0
STARTED="${TAXI_TEST_PG_STARTED:-}"
PG_USER="${TAXI_TEST_PG_USER:-taxi}"
PG_PASSWORD="${TAXI_TEST_PG_PASSWORD:-taxi}"
PG_DB="${TAXI_TEST_PG_DB:-taxi_test}"

say() { echo "start-postgres: $*" >&2; }
die() { say "$*"; exit 1; }
is_root() { [ "$(id -u)" -eq 0 ]; }

if [ "${1:-}" = "--stop" ]; then
    [ -n "$STARTED" ] && [ -s "$STARTED" ] || exit 0
    read -r version name <"$STARTED"
    say "stopping cluster $version/$name (started for the tests)"
    pg_ctlcluster "$version" "$name" stop >&2 || true
    rm -f "$STARTED"
    exit 0
fi

if ! command -v pg_lsclusters >/dev/null; then
    [ "$install" = 1 ] || die "PostgreSQL is not installed; run $0 as root to install Debian's postgresql, or set TAXI_TEST_PG_URL to a server"
    is_root || die "PostgreSQL is not installed; run this script as root (sudo $0) to install Debian's postgresql"
    say "installing Debian's postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q </dev/null >&2
    apt-get install -y -q --no-install-recommends postgresql </dev/null >&2
fi

# The first cluster Debian knows (the package creates <version>/main); make one if none.
cluster="$(pg_lsclusters --no-header | head -n1)"
if [ -z "$cluster" ]; then
    is_root || die "no PostgreSQL cluster; run this script as root (sudo $0) to create one"
    version="$(ls /usr/lib/postgresql | sort -V | tail -n1)"
    pg_createcluster "$version" main >&2
    cluster="$(pg_lsclusters --no-header | head -n1)"
fi
read -r version name port status _ <<<"$cluster"

if [ "$status" != "online" ]; then
    is_root || die "PostgreSQL cluster $version/$name is $status; run this script as root (sudo $0) to start it"
    say "starting cluster $version/$name on port $port"
    pg_ctlcluster "$version" "$name" start >&2
    [ -z "$STARTED" ] || echo "$version $name" >"$STARTED"
fi
for _ in $(seq 1 60); do
    pg_isready -q -h 127.0.0.1 -p "$port" && break
    sleep 0.5
done
pg_isready -q -h 127.0.0.1 -p "$port" || die "PostgreSQL $version/$name does not answer on 127.0.0.1:$port"

url="postgresql://$PG_USER:$PG_PASSWORD@127.0.0.1:$port/$PG_DB"
if psql "$url" -tAc "SELECT 1" >/dev/null 2>&1; then
    echo "$url"
    exit 0
fi

is_root || die "cannot log in as $PG_USER to $PG_DB on port $port; run this script as root (sudo $0) to create them"
as_postgres() { runuser -u postgres -- psql -p "$port" -v ON_ERROR_STOP=1 -qtA "$@"; }
if [ "$(as_postgres -c "SELECT 1 FROM pg_roles WHERE rolname = '$PG_USER'")" != "1" ]; then
    say "creating role $PG_USER"
    # CREATEDB: each test makes (and drops) its own database.
    as_postgres -c "CREATE ROLE \"$PG_USER\" LOGIN CREATEDB PASSWORD '$PG_PASSWORD'"
fi
if [ "$(as_postgres -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" != "1" ]; then
    say "creating database $PG_DB"
    as_postgres -c "CREATE DATABASE \"$PG_DB\" OWNER \"$PG_USER\""
fi
psql "$url" -tAc "SELECT 1" >/dev/null || die "cannot log in to $url"
echo "$url"
