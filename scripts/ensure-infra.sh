#!/usr/bin/env bash
# Make sure the infrastructure Lectern needs locally is up, idempotently:
#   - RabbitMQ   on 127.0.0.1:5672 (guest/guest)
#   - PostgreSQL on 127.0.0.1:5432 (user postgres, trust or PGPASSWORD)
#   - the database $LECTERN_DB_NAME (default "lectern"), and "lectern_test"
#     too when LECTERN_CREATE_TEST_DB=1.
#
# For each service, in order:
#   1. the port already answers          -> leave it alone;
#   2. installed but not running         -> start it (no systemd needed);
#   3. not installed, root with apt-get  -> apt-get install, then start it;
#   4. otherwise                         -> explain what is missing, exit 1.
# Then wait (up to LECTERN_INFRA_TIMEOUT seconds, default 90) until each one
# really is ready, and create the databases that are missing.
#
# Made for Debian (bookworm) machines and CI containers where systemctl does
# not work: PostgreSQL is started with pg_ctlcluster --skip-systemctl-redirect
# and RabbitMQ with rabbitmq-server -detached.
#
# Environment (all optional):
#   LECTERN_DB_NAME          database to create          (default: lectern)
#   LECTERN_CREATE_TEST_DB   1 => also create lectern_test (default: 0)
#   LECTERN_INFRA_TIMEOUT    seconds to wait per service (default: 90)
#   AMQP_HOST / AMQP_PORT    RabbitMQ address            (default: 127.0.0.1:5672)
#   PG_HOST / PG_PORT        PostgreSQL address          (default: 127.0.0.1:5432)
#   PG_USER                  PostgreSQL superuser        (default: postgres)
#   PGPASSWORD               used by psql/createdb if the server wants a password
set -euo pipefail

AMQP_HOST="${AMQP_HOST:-127.0.0.1}"
AMQP_PORT="${AMQP_PORT:-5672}"
PG_HOST="${PG_HOST:-127.0.0.1}"
PG_PORT="${PG_PORT:-5432}"
PG_USER="${PG_USER:-postgres}"
DB_NAME="${LECTERN_DB_NAME:-lectern}"
CREATE_TEST_DB="${LECTERN_CREATE_TEST_DB:-0}"
TIMEOUT="${LECTERN_INFRA_TIMEOUT:-90}"

APT_UPDATED=0

log() { printf '[ensure-infra] %s\n' "$*" >&2; }
die() {
    printf '[ensure-infra] ERROR: %s\n' "$*" >&2
    exit 1
}

is_root() { [[ "$(id -u)" -eq 0 ]]; }
have() { command -v "$1" >/dev/null 2>&1; }
can_apt() { is_root && have apt-get; }

# True when something accepts TCP connections on host:port (bash /dev/tcp,
# in a subshell bounded by `timeout` so a filtered port cannot hang us).
port_open() {
    local host=$1 port=$2
    timeout 2 bash -c "exec 3<>/dev/tcp/${host}/${port}" 2>/dev/null
}

# True when an AMQP 0-9-1 broker answers the protocol header with a frame:
# stronger than a bare TCP connect, and needs no client tools. The reply to
# "AMQP\0\0\x09\x01" is a Connection.Start method frame, whose first byte
# (frame type) is 1.
amqp_answers() {
    local host=$1 port=$2
    # The inner script gets: $0 host, $1 port, $2 the expected byte (\x01).
    # shellcheck disable=SC2016 # expanded by the inner bash
    timeout 3 bash -c '
        exec 3<>"/dev/tcp/$0/$1" || exit 1
        printf "AMQP\000\000\011\001" >&3
        IFS= read -r -n1 -d "" byte <&3 || exit 1
        exec 3>&-
        [[ "$byte" == "$2" ]]
    ' "$host" "$port" $'\x01' 2>/dev/null
}

apt_install() {
    if [[ "$APT_UPDATED" -eq 0 ]]; then
        log "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        APT_UPDATED=1
    fi
    log "apt-get install -y $*"
    # Under a policy-rc.d that forbids starting services (Docker images) the
    # packages install fine but do not start: this script starts them after.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# Poll "$@" once a second until it succeeds or TIMEOUT seconds pass.
wait_for() {
    local what=$1
    shift
    local deadline=$((SECONDS + TIMEOUT))
    until "$@"; do
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 1
    done
    log "$what is ready"
}

# --------------------------------------------------------------------------
# RabbitMQ
# --------------------------------------------------------------------------

rabbit_ready() {
    amqp_answers "$AMQP_HOST" "$AMQP_PORT"
}

start_rabbitmq() {
    log "starting RabbitMQ: rabbitmq-server -detached"
    # As root, Debian's /usr/sbin/rabbitmq-server wrapper drops to the
    # rabbitmq user itself. -detached returns at once; we wait below.
    rabbitmq-server -detached || die "rabbitmq-server -detached failed; see /var/log/rabbitmq/"
    if have rabbitmqctl; then
        # Blocks until the node has fully booted (plugins, vhosts, listeners).
        # May fail early while the node is still coming up; the AMQP poll
        # below is the real test, so failure here is only informative.
        rabbitmqctl -q await_startup --timeout "$TIMEOUT" >/dev/null 2>&1 ||
            log "rabbitmqctl await_startup did not confirm; polling the AMQP port"
    fi
}

ensure_rabbitmq() {
    if port_open "$AMQP_HOST" "$AMQP_PORT"; then
        log "RabbitMQ: ${AMQP_HOST}:${AMQP_PORT} already answers; leaving it"
    elif have rabbitmq-server; then
        start_rabbitmq
    elif can_apt; then
        apt_install rabbitmq-server
        # The package may have started it (no policy-rc.d); start otherwise.
        if ! port_open "$AMQP_HOST" "$AMQP_PORT"; then
            start_rabbitmq
        fi
    else
        die "RabbitMQ is not running on ${AMQP_HOST}:${AMQP_PORT} and is not installed.
  Install it (as root):   apt-get update && apt-get install -y rabbitmq-server
  then start it:          rabbitmq-server -detached
  or run a container:     docker run -d -p 5672:5672 rabbitmq:3.13-management"
    fi

    wait_for "RabbitMQ (${AMQP_HOST}:${AMQP_PORT})" rabbit_ready ||
        die "RabbitMQ did not answer AMQP on ${AMQP_HOST}:${AMQP_PORT} within ${TIMEOUT}s.
  Look at /var/log/rabbitmq/ (a node name whose host does not resolve is a
  common cause: check that \`hostname\` resolves, e.g. in /etc/hosts)."
    ensure_rabbitmq_plugins
}

# The management API (used by `lectern status` when present) and the Prometheus
# endpoint on :15692 (queue depth and consumers per queue, scraped by the metric
# tests and by Prometheus). Only for a broker on this machine that we can manage.
ensure_rabbitmq_plugins() {
    if [[ "$AMQP_HOST" != 127.0.0.1 && "$AMQP_HOST" != localhost ]] || ! have rabbitmq-plugins; then
        return 0
    fi
    if port_open 127.0.0.1 15692; then
        return 0
    fi
    log "RabbitMQ: enabling rabbitmq_management and rabbitmq_prometheus"
    rabbitmq-plugins -q enable rabbitmq_management rabbitmq_prometheus >/dev/null 2>&1 ||
        log "could not enable RabbitMQ's plugins (queue metrics on :15692 unavailable)"
}

# --------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------

pg_ready() {
    if have pg_isready; then
        pg_isready -q -h "$PG_HOST" -p "$PG_PORT"
    else
        port_open "$PG_HOST" "$PG_PORT"
    fi
}

# Prints "VERSION CLUSTER PORT" of the local cluster to start: the one
# pg_lsclusters reports on $PG_PORT, else the first of /etc/postgresql with
# cluster "main" (PORT is then whatever pg_lsclusters says, or "?").
pg_cluster() {
    local found="" ver
    if have pg_lsclusters; then
        found=$(pg_lsclusters -h 2>/dev/null | awk -v p="$PG_PORT" '$3 == p { print $1, $2, $3; exit }' || true)
    fi
    if [[ -z "$found" && -d /etc/postgresql ]]; then
        # shellcheck disable=SC2012 # version directories are plain numbers
        ver=$(ls /etc/postgresql 2>/dev/null | head -1 || true)
        if [[ -n "$ver" ]]; then
            local port="?"
            if have pg_lsclusters; then
                port=$(pg_lsclusters -h "$ver" main 2>/dev/null | awk '{ print $3; exit }' || true)
            fi
            found="$ver main ${port:-?}"
        fi
    fi
    printf '%s' "$found"
}

pg_installed() {
    have pg_ctlcluster && [[ -n "$(pg_cluster)" ]]
}

start_postgres() {
    local ver cluster port
    read -r ver cluster port <<<"$(pg_cluster)"
    [[ -n "${ver:-}" ]] || die "no PostgreSQL cluster found under /etc/postgresql"
    if [[ "$port" != "?" && "$port" != "$PG_PORT" ]]; then
        die "the local PostgreSQL cluster $ver/$cluster is configured for port $port, not $PG_PORT.
  Start it yourself, or set PG_PORT=$port."
    fi
    log "starting PostgreSQL: pg_ctlcluster --skip-systemctl-redirect $ver $cluster start"
    # Run as root, pg_ctlcluster switches to the cluster owner by itself.
    pg_ctlcluster --skip-systemctl-redirect "$ver" "$cluster" start ||
        die "pg_ctlcluster failed to start $ver/$cluster (it needs root or the postgres user);
  see /var/log/postgresql/postgresql-$ver-$cluster.log"
}

# Only for a cluster this script has just installed: let local TCP clients
# connect as any user without a password (127.0.0.1/32 and ::1/128 "host"
# lines -> trust). Development machines only; never run on an existing install.
trust_local_tcp() {
    local ver cluster _port hba
    read -r ver cluster _port <<<"$(pg_cluster)"
    hba="/etc/postgresql/$ver/$cluster/pg_hba.conf"
    [[ -f "$hba" ]] || die "expected $hba after installing PostgreSQL"
    log "fresh install: trusting local TCP connections in $hba"
    cp -p "$hba" "$hba.orig-ensure-infra"
    # Lines look like: host  all  all  127.0.0.1/32  scram-sha-256
    sed -ri 's#^(host[[:space:]]+all[[:space:]]+all[[:space:]]+(127\.0\.0\.1/32|::1/128)[[:space:]]+)[a-z0-9-]+[[:space:]]*$#\1trust#' "$hba"
    # Reload if running (the package may have started it), else the start
    # that follows reads the new file anyway.
    if pg_ctlcluster --skip-systemctl-redirect "$ver" "$cluster" status >/dev/null 2>&1; then
        pg_ctlcluster --skip-systemctl-redirect "$ver" "$cluster" reload
    fi
}

ensure_postgres() {
    if port_open "$PG_HOST" "$PG_PORT"; then
        log "PostgreSQL: ${PG_HOST}:${PG_PORT} already answers; leaving it"
    elif pg_installed; then
        start_postgres
    elif can_apt; then
        apt_install postgresql
        if [[ -z "$(pg_cluster)" ]]; then
            # postgresql-common normally creates <ver>/main; create it if the
            # machine is configured not to (create_main_cluster = false).
            local ver
            # shellcheck disable=SC2012 # version directories are plain numbers
            ver=$(ls /usr/lib/postgresql | sort -V | tail -1)
            log "creating cluster $ver/main"
            pg_createcluster "$ver" main
        fi
        trust_local_tcp
        if ! port_open "$PG_HOST" "$PG_PORT"; then
            start_postgres
        fi
    else
        die "PostgreSQL is not running on ${PG_HOST}:${PG_PORT} and is not installed.
  Install it (as root):   apt-get update && apt-get install -y postgresql
  then start it:          pg_ctlcluster --skip-systemctl-redirect <version> main start
  and allow local TCP logins for user postgres (trust in pg_hba.conf for
  127.0.0.1/32), or run:  docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:16"
    fi

    wait_for "PostgreSQL (${PG_HOST}:${PG_PORT})" pg_ready ||
        die "PostgreSQL did not become ready on ${PG_HOST}:${PG_PORT} within ${TIMEOUT}s; see /var/log/postgresql/"
}

# --------------------------------------------------------------------------
# Databases
# --------------------------------------------------------------------------

# How to run psql/createdb: over TCP as $PG_USER; if that is refused (e.g.
# password auth and no PGPASSWORD) and we are root on the server's machine,
# fall back to the local socket as the postgres OS user (peer auth).
PG_VIA=""

pg_pick_access() {
    if psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -w -tAc 'SELECT 1' >/dev/null 2>&1; then
        PG_VIA=tcp
    elif is_root && id postgres >/dev/null 2>&1 && have runuser &&
        runuser -u postgres -- psql -p "$PG_PORT" -d postgres -tAc 'SELECT 1' >/dev/null 2>&1; then
        log "TCP login as $PG_USER refused; using the local socket as OS user postgres"
        PG_VIA=socket
    else
        die "cannot log in to PostgreSQL at ${PG_HOST}:${PG_PORT} as ${PG_USER}.
  Set PGPASSWORD, or allow trust for 127.0.0.1/32 in pg_hba.conf (development only)."
    fi
}

pg_run() { # pg_run <psql|createdb> args...
    local tool=$1
    shift
    if [[ "$PG_VIA" == tcp ]]; then
        "$tool" -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -w "$@"
    else
        runuser -u postgres -- "$tool" -p "$PG_PORT" "$@"
    fi
}

ensure_database() {
    local name=$1
    # Database names are passed as data to the query, never spliced into SQL
    # unquoted: refuse anything but a plain identifier.
    [[ "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "refusing odd database name: $name"
    local exists
    exists=$(pg_run psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='${name}'")
    if [[ "$exists" == 1 ]]; then
        log "database $name exists"
    else
        log "creating database $name"
        pg_run createdb "$name"
    fi
}

ensure_pg_client() {
    if ! have psql || ! have createdb; then
        if can_apt; then
            apt_install postgresql-client
        else
            die "psql/createdb are missing: apt-get install -y postgresql-client"
        fi
    fi
}

main() {
    have timeout || die "coreutils 'timeout' is required"
    ensure_rabbitmq
    ensure_postgres
    ensure_pg_client
    pg_pick_access
    ensure_database "$DB_NAME"
    if [[ "$CREATE_TEST_DB" == 1 ]]; then
        ensure_database lectern_test
    fi
    log "ok: RabbitMQ ${AMQP_HOST}:${AMQP_PORT}, PostgreSQL ${PG_HOST}:${PG_PORT}, database ${DB_NAME}"
}

main "$@"
