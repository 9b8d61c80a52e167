#!/usr/bin/env bash
# `npm stop`: stop what `npm start` / `npm test` started for this checkout.
# Only processes recorded in $IOTFLOW_DATA_DIR/run (plus our own PostgreSQL
# data dir) are touched; services that were already running are left alone.
# Safe to run repeatedly.
set -euo pipefail
# shellcheck source=infra/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
iotflow_paths

# stop_pidfile NAME PIDFILE EXPECTED_COMM: SIGTERM, wait up to 20 s, SIGKILL.
stop_pidfile() {
  local name="$1" pidfile="$2" comm="$3" pid
  if [[ ! -f $pidfile ]]; then
    log "$name: not started by iotflow (no $pidfile)"
    return 0
  fi
  pid="$(tr -d '[:space:]' <"$pidfile")"
  # Guard against a stale pidfile whose PID now belongs to something else.
  if [[ -z $pid ]] || ! kill -0 "$pid" 2>/dev/null ||
    [[ $(ps -o comm= -p "$pid" 2>/dev/null) != "$comm"* ]]; then
    log "$name: not running (removing stale $pidfile)"
    rm -f "$pidfile"
    return 0
  fi
  kill -TERM "$pid"
  if ! wait_until 20 pid_gone "$pid"; then
    warn "$name: still running after 20 s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  log "$name: stopped (pid $pid)"
}

pid_gone() { ! kill -0 "$1" 2>/dev/null; }

stop_postgres() {
  local pgdata="$DATA/postgres" bin
  if [[ ! -f $pgdata/postmaster.pid ]]; then
    log "postgres: not started by iotflow (no $pgdata/postmaster.pid)"
    return 0
  fi
  bin="$(pg_bindir)" || die "postgres: pg_ctl not found"
  if as_pg_user "$bin/pg_ctl" stop -D "$pgdata" -m fast >/dev/null; then
    log "postgres: stopped ($pgdata)"
  else
    log "postgres: not running ($pgdata)"
  fi
}

# The app supervisor first, so the apps drain before their backends go away.
stop_pidfile apps "$RUN_DIR/apps.pid" node
stop_pidfile alertmanager "$RUN_DIR/alertmanager.pid" prometheus-aler
stop_pidfile mosquitto "$RUN_DIR/mosquitto.pid" mosquitto
stop_pidfile influxdb "$RUN_DIR/influxd.pid" influxd
stop_postgres
stop_pidfile redis "$RUN_DIR/redis.pid" redis-server
# The ports they ran on (own_service_port in lib.sh) are theirs no more.
rm -f "$RUN_DIR/redis.port" "$RUN_DIR/mosquitto.port" "$RUN_DIR/mosquitto.tls"
