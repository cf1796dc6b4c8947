#!/usr/bin/env bash
# Make sure PostgreSQL, Redis and MariaDB answer on loopback, as the test suite needs.
# Start each one if it is installed but stopped; install it from Debian's packages if missing.
# The servers may be shared with other runs: this script never stops or wipes anything.
set -euo pipefail

PG_PORT=${RAGLINE_TEST_PG_PORT:-5432}
REDIS_PORT=${RAGLINE_TEST_REDIS_PORT:-6379}
MYSQL_PORT=${RAGLINE_TEST_MYSQL_PORT:-3306}
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
apt_updated=""

log() { printf 'ensure-services: %s\n' "$*" >&2; }

apt_install() {
  if [ -z "$apt_updated" ]; then
    $SUDO apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

wait_for() {  # name, command...
  local name=$1; shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then log "$name is up"; return 0; fi
    sleep 0.5
  done
  log "$name did not come up"; return 1
}

pg_up() { pg_isready -q -h 127.0.0.1 -p "$PG_PORT"; }
redis_up() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping | grep -q PONG; }
mysql_up() { mariadb-admin --protocol=tcp -h 127.0.0.1 -P "$MYSQL_PORT" -uroot ping >/dev/null 2>&1; }

# --- PostgreSQL ------------------------------------------------------------------------
if ! { command -v pg_isready >/dev/null && pg_up; }; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    log "installing PostgreSQL"
    apt_install postgresql
    # Tests connect over loopback as `postgres` without a password, as on CI machines.
    for hba in /etc/postgresql/*/main/pg_hba.conf; do
      grep -q 'ragline-test' "$hba" || sed -i '1i host all all 127.0.0.1/32 trust # ragline-test\nhost all all ::1/128 trust # ragline-test' "$hba"
    done
  fi
  log "starting PostgreSQL"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start || true
  wait_for PostgreSQL pg_up
else
  log "PostgreSQL is up"
fi

# --- Redis -----------------------------------------------------------------------------
if ! { command -v redis-cli >/dev/null && redis_up; }; then
  command -v redis-server >/dev/null || { log "installing Redis"; apt_install redis-server; }
  log "starting Redis"
  $SUDO mkdir -p /var/lib/redis /var/log/redis
  $SUDO redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for Redis redis_up
else
  log "Redis is up"
fi

# --- MariaDB ---------------------------------------------------------------------------
if ! { command -v mariadb-admin >/dev/null && mysql_up; }; then
  command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || { log "installing MariaDB"; apt_install mariadb-server; }
  log "starting MariaDB"
  $SUDO mkdir -p /run/mysqld && $SUDO chown mysql:mysql /run/mysqld 2>/dev/null || true
  $SUDO start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  wait_for MariaDB mysql_up
else
  log "MariaDB is up"
fi

# --- tools the tests run -----------------------------------------------------------------
# strace records every connection attempt of ragline (tests/test_offline.py).
command -v strace >/dev/null || { log "installing strace"; apt_install strace; }
