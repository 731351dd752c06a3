#!/usr/bin/env bash
# Makes sure PostgreSQL is usable by firmflow-store-postgres's tests:
# installed (apt), a cluster exists (pg_createcluster), it runs
# (pg_ctlcluster), it answers on 127.0.0.1:5432 with trust auth for role
# `postgres`, and that role may create databases (each test copies a
# migrated template database). Idempotent and quiet; exits non-zero with a
# message on failure. Debian/Ubuntu layout (postgresql-common).
set -euo pipefail

HOST=127.0.0.1
PORT=5432
ROLE=postgres

say() { [ -n "${VERBOSE:-}" ] && echo "ensure-postgres: $*" >&2 || true; }
die() { echo "ensure-postgres: $*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "not root and no sudo: cannot install or start PostgreSQL"
    SUDO="sudo -n"
fi

can_connect() {
    PGCONNECT_TIMEOUT=3 psql -h "$HOST" -p "$PORT" -U "$ROLE" -w -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1
}

# Fast path: already usable.
if command -v psql >/dev/null 2>&1 && can_connect; then
    :
else
    # 1. Installed?
    if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || ! command -v pg_ctlcluster >/dev/null 2>&1; then
        say "installing postgresql with apt"
        export DEBIAN_FRONTEND=noninteractive
        $SUDO apt-get update -qq >/dev/null 2>&1 || die "apt-get update failed"
        $SUDO apt-get install -y -qq postgresql >/dev/null 2>&1 || die "apt-get install postgresql failed"
    fi
    command -v pg_lsclusters >/dev/null 2>&1 || die "postgresql-common (pg_lsclusters) is missing after install"

    # 2. A cluster on our port, else any, else a new one.
    line=$(pg_lsclusters -h 2>/dev/null | awk -v p="$PORT" '$3 == p {print; exit}')
    if [ -z "$line" ]; then
        line=$(pg_lsclusters -h 2>/dev/null | head -n 1)
        if [ -n "$line" ] && [ "$(echo "$line" | awk '{print $3}')" != "$PORT" ]; then
            die "a PostgreSQL cluster exists but listens on port $(echo "$line" | awk '{print $3}'), not $PORT: $line"
        fi
    fi
    if [ -z "$line" ]; then
        ver=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
        [ -n "$ver" ] || die "no PostgreSQL version found under /usr/lib/postgresql"
        say "creating cluster $ver/main on port $PORT"
        $SUDO pg_createcluster "$ver" main --port "$PORT" -- --auth-local=trust --auth-host=trust >/dev/null 2>&1 \
            || die "pg_createcluster $ver main failed"
        line=$(pg_lsclusters -h | awk -v p="$PORT" '$3 == p {print; exit}')
        [ -n "$line" ] || die "cluster $ver/main was not created"
    fi
    ver=$(echo "$line" | awk '{print $1}')
    name=$(echo "$line" | awk '{print $2}')
    status=$(echo "$line" | awk '{print $4}')
    conf_dir="/etc/postgresql/$ver/$name"

    # 3. Trust auth for the test role over TCP on loopback (first match wins in pg_hba.conf).
    hba="$conf_dir/pg_hba.conf"
    if [ -f "$hba" ] && ! grep -qE "^host[[:space:]]+all[[:space:]]+$ROLE[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust" "$hba"; then
        say "adding trust rules for $ROLE to $hba"
        tmp=$(mktemp)
        { echo "host all $ROLE 127.0.0.1/32 trust"; echo "host all $ROLE ::1/128 trust"; cat "$hba"; } > "$tmp"
        $SUDO cp "$tmp" "$hba" && rm -f "$tmp"
        reload=1
    fi

    # 4. Running?
    if [ "$status" != "online" ]; then
        say "starting cluster $ver/$name"
        $SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start >/dev/null 2>&1 \
            || die "pg_ctlcluster $ver $name start failed (see /var/log/postgresql/postgresql-$ver-$name.log)"
    elif [ -n "${reload:-}" ]; then
        $SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" reload >/dev/null 2>&1 \
            || die "pg_ctlcluster $ver $name reload failed"
    fi

    # 5. Reachable?
    for _ in $(seq 1 60); do
        can_connect && break
        sleep 0.5
    done
    can_connect || die "PostgreSQL $ver/$name does not accept role $ROLE at $HOST:$PORT without a password"
fi

# 6. The role the tests use may create databases (superuser normally).
ok=$(psql -h "$HOST" -p "$PORT" -U "$ROLE" -w -d postgres -Atqc \
    "SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user" 2>/dev/null || true)
[ "$ok" = "t" ] || die "role $ROLE cannot create databases (needs CREATEDB)"
exit 0
