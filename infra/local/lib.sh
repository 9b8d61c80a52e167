# shellcheck shell=bash
# IoTFlow local bootstrap library: sourced by start.sh, stop.sh and test.sh.
#
# Brings up Redis, PostgreSQL, InfluxDB 1.x and Mosquitto for local work without
# Docker or systemd. A service that already answers on its URL is used as is;
# otherwise it is installed via apt (root only) and started as a plain
# background process whose data, logs and pidfile live under $IOTFLOW_DATA_DIR.
#
# Safe under `set -euo pipefail`. Fatal errors call `exit 1`.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export ROOT

iotflow_root() { printf '%s\n' "$ROOT"; }

# ---------------------------------------------------------------- output ----

log() { printf '%s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# Print the command the user has to run themselves, then stop.
die_run() {
  printf 'error: %s\n' "$1" >&2
  printf '  run:  %s\n' "$2" >&2
  printf '  then run this command again.\n' >&2
  exit 1
}

is_root() { [[ $(id -u) -eq 0 ]]; }

# ----------------------------------------------------------- environment ----

# Only the data-dir layout; used by stop.sh, which must not create anything else.
iotflow_paths() {
  export IOTFLOW_DATA_DIR="${IOTFLOW_DATA_DIR:-$ROOT/.iotflow}"
  DATA="$IOTFLOW_DATA_DIR"
  RUN_DIR="$DATA/run"
  LOG_DIR="$DATA/logs"
}

iotflow_env_defaults() {
  iotflow_paths
  # Whether the user chose these: `npm start` replaces a default Redis or broker that cannot keep
  # what it acknowledges, never one the user named.
  IOTFLOW_REDIS_URL_GIVEN="${REDIS_URL:+1}"
  IOTFLOW_MQTT_URL_GIVEN="${MQTT_URL:+1}"
  # Redis Sentinel or Cluster named (docs/redis-ha.md): used as given, and REDIS_URL stays unset
  # (the apps refuse two Redis modes); they check each master's durability themselves.
  IOTFLOW_REDIS_HA="${REDIS_SENTINELS:+sentinel}${REDIS_CLUSTER_NODES:+cluster}"
  [[ -n $IOTFLOW_REDIS_HA ]] || : "${REDIS_URL:=redis://127.0.0.1:6379}"
  : "${DATABASE_URL:=postgres://postgres@127.0.0.1:5432/iotflow}"
  : "${INFLUX_URL:=http://127.0.0.1:8086}"
  : "${INFLUX_API:=v1}"
  : "${INFLUX_DATABASE:=iotflow}"
  : "${MQTT_URL:=mqtt://127.0.0.1:1883}"
  : "${HOST:=127.0.0.1}"
  : "${PORT:=8080}"
  : "${LOG_LEVEL:=info}"
  : "${QUEUE_PREFIX:=iotflow}"
  : "${ALERTMANAGER_URL:=http://127.0.0.1:9093}"
  [[ -n $IOTFLOW_REDIS_HA ]] || export REDIS_URL
  export DATABASE_URL INFLUX_URL INFLUX_API INFLUX_DATABASE MQTT_URL \
    HOST PORT LOG_LEVEL QUEUE_PREFIX ALERTMANAGER_URL
  if [[ -z ${ADMIN_TOKEN:-} ]]; then
    ADMIN_TOKEN="$(iotflow_admin_token)"
  fi
  export ADMIN_TOKEN
}

# Stable per-checkout admin token, generated once and kept private.
iotflow_admin_token() {
  local file="$IOTFLOW_DATA_DIR/admin-token"
  if [[ ! -s $file ]]; then
    mkdir -p "$IOTFLOW_DATA_DIR"
    (
      umask 077
      node -e "console.log(require('crypto').randomBytes(24).toString('base64url'))" >"$file"
    )
  fi
  chmod 600 "$file"
  tr -d '[:space:]' <"$file"
}

iotflow_dirs() {
  mkdir -p "$RUN_DIR" "$LOG_DIR"
}

# ------------------------------------------------------------ node / pnpm ----

ensure_pnpm() {
  command -v pnpm >/dev/null 2>&1 && return 0
  log "pnpm: not found, installing pnpm@10 globally via npm"
  if ! npm install -g pnpm@10; then
    die_run "could not install pnpm (global npm prefix not writable?)" \
      "sudo npm install -g pnpm@10"
  fi
  hash -r
  command -v pnpm >/dev/null 2>&1 ||
    die "pnpm was installed but is not on PATH; add $(npm prefix -g)/bin to PATH"
}

ensure_node_modules() {
  local lock="$ROOT/pnpm-lock.yaml" marker="$ROOT/node_modules/.modules.yaml"
  if [[ ! -f $lock ]]; then
    log "pnpm: no pnpm-lock.yaml yet, running pnpm install"
    (cd "$ROOT" && pnpm install)
  elif [[ ! -f $marker || $lock -nt $marker ]]; then
    log "pnpm: installing dependencies (frozen lockfile)"
    # confirm-modules-purge=false: never stop at an interactive prompt.
    (cd "$ROOT" && pnpm install --frozen-lockfile --config.confirm-modules-purge=false)
    # pnpm may skip rewriting the marker when nothing changed.
    touch "$marker"
  fi
}

# ------------------------------------------------------------- utilities ----

# url_host_port URL DEFAULT_PORT -> "host port"
# Handles scheme://[user[:pass]@]host[:port][/path][?query] and [ipv6]:port.
url_host_port() {
  local rest="${1#*://}" host port=""
  rest="${rest%%/*}"
  rest="${rest%%\?*}"
  rest="${rest##*@}"
  if [[ $rest == \[* ]]; then
    host="${rest%%]*}"
    host="${host#[}"
    port="${rest#*]}"
    port="${port#:}"
  elif [[ $rest == *:* ]]; then
    host="${rest%:*}"
    port="${rest##*:}"
  else
    host="$rest"
  fi
  printf '%s %s\n' "${host:-127.0.0.1}" "${port:-$2}"
}

# We only ever start services on this machine.
is_local_host() {
  case "$1" in
  127.* | localhost | ::1 | 0.0.0.0) return 0 ;;
  *) return 1 ;;
  esac
}

# tcp_reachable HOST PORT: plain TCP connect, no extra tools needed.
tcp_reachable() {
  if command -v timeout >/dev/null 2>&1; then
    # shellcheck disable=SC2016 # expanded by the inner bash
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
  else
    node -e '
      const s = require("net").connect({ host: process.argv[1], port: +process.argv[2] });
      s.setTimeout(2000, () => process.exit(1));
      s.on("connect", () => process.exit(0)).on("error", () => process.exit(1));
    ' "$1" "$2"
  fi
}

# http_status URL -> HTTP status code, or 000 when unreachable.
http_status() {
  if command -v curl >/dev/null 2>&1; then
    curl -s -o /dev/null -m 3 -w '%{http_code}' "$1" || true
  else
    node -e '
      fetch(process.argv[1], { signal: AbortSignal.timeout(3000) })
        .then((r) => console.log(r.status), () => console.log("000"));
    ' "$1"
  fi
}

# wait_until SECONDS CMD...: poll CMD every 0.5 s.
wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}

# Fail with the end of the service's log so the cause is visible right away.
die_with_log() {
  local logfile="$2"
  printf 'error: %s\n' "$1" >&2
  if [[ -f $logfile ]]; then
    printf -- '--- last lines of %s ---\n' "$logfile" >&2
    tail -n 30 "$logfile" >&2
  fi
  exit 1
}

# Install Debian packages as root; otherwise tell the user what to run.
apt_install() {
  is_root || die_run "missing package(s): $*" "sudo apt-get install -y $*"
  command -v apt-get >/dev/null 2>&1 ||
    die "apt-get not found; install $* with your package manager"
  log "apt: installing $*"
  export DEBIAN_FRONTEND=noninteractive
  # Fresh machines often have no package lists yet: retry after an update.
  apt-get install -y --no-install-recommends "$@" ||
    { apt-get update && apt-get install -y --no-install-recommends "$@"; } ||
    die "apt-get install $* failed"
}

# Newest PostgreSQL server binaries installed by the Debian packages.
pg_bindir() {
  local dir
  dir="$(printf '%s\n' /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -n 1)"
  [[ -x $dir ]] && printf '%s\n' "${dir%/pg_ctl}"
}

# Run a command as the postgres user when we are root (initdb refuses root).
as_pg_user() {
  if is_root; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# ------------------------------------------------------------------ redis ----

redis_ping() {
  command -v timeout >/dev/null 2>&1 || { tcp_reachable "$1" "$2"; return; }
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 2 bash -c '
    exec 3<>"/dev/tcp/$0/$1" || exit 1
    printf "PING\r\n" >&3
    IFS= read -r -t 2 line <&3 && [[ $line == "+PONG"* ]]
  ' "$1" "$2" 2>/dev/null
}

# redis_config_get HOST PORT NAME -> the value of CONFIG GET NAME; fails when it cannot be read.
redis_config_get() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 2 bash -c '
    exec 3<>"/dev/tcp/$0/$1" || exit 1
    printf "*3\r\n\$6\r\nCONFIG\r\n\$3\r\nGET\r\n\$%d\r\n%s\r\n" "${#2}" "$2" >&3
    IFS= read -r -t 2 head <&3 && [[ $head == "*2"* ]] || exit 1
    for _ in 1 2 3; do IFS= read -r -t 2 _ <&3 || exit 1; done
    IFS= read -r -t 2 value <&3 || exit 1
    printf "%s\n" "$value" | tr -d "\r"
  ' "$1" "$2" "$3" 2>/dev/null
}

# redis_durable HOST PORT: true when it keeps an append-only file and never evicts (what a 202 promises).
redis_durable() {
  [[ $(redis_config_get "$1" "$2" appendonly) == yes ]] &&
    [[ $(redis_config_get "$1" "$2" maxmemory-policy) == noeviction ]]
}

# Starts IoTFlow's own Redis on 127.0.0.1:PORT with infra/redis/redis.conf (AOF everysec,
# noeviction), data under $DATA/redis.
redis_start() {
  local port="$1"
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  iotflow_dirs
  mkdir -p "$DATA/redis"
  redis-server "$ROOT/infra/redis/redis.conf" --daemonize yes --bind 127.0.0.1 --port "$port" \
    --dir "$DATA/redis" --pidfile "$RUN_DIR/redis.pid" --logfile "$LOG_DIR/redis.log" --save "" ||
    die_with_log "redis: redis-server failed to start" "$LOG_DIR/redis.log"
  wait_until 20 redis_ping 127.0.0.1 "$port" ||
    die_with_log "redis: no answer on 127.0.0.1:$port after 20 s" "$LOG_DIR/redis.log"
  printf '%s\n' "$port" >"$RUN_DIR/redis.port"
  log "redis: started on 127.0.0.1:$port (append-only file, noeviction; data $DATA/redis)"
}

ensure_redis() {
  local host port
  if [[ -n $IOTFLOW_REDIS_HA ]]; then
    log "redis: using the Redis $IOTFLOW_REDIS_HA given (${REDIS_SENTINELS:-${REDIS_CLUSTER_NODES:-}})"
    return 0
  fi
  read -r host port < <(url_host_port "$REDIS_URL" 6379)
  if tcp_reachable "$host" "$port"; then
    log "redis: using existing at $host:$port"
    return 0
  fi
  is_local_host "$host" || die "redis: $REDIS_URL is not reachable"
  redis_start "$port"
}

# first_free_port FROM: the first port from FROM up on which nothing listens on 127.0.0.1.
first_free_port() {
  local port="$1"
  while tcp_reachable 127.0.0.1 "$port"; do port=$((port + 1)); done
  printf '%s\n' "$port"
}

# For `npm start`: the queues need a Redis that keeps what it acknowledged. A REDIS_URL set by hand is
# used as given (the apps warn if it is not durable); the default one is used only when it is
# durable, else IoTFlow starts its own (or reuses the one it started before) on the next free port
# from 6380, and REDIS_URL points there.
ensure_durable_redis() {
  local host port
  [[ -z $IOTFLOW_REDIS_HA ]] || {
    ensure_redis
    return 0
  }
  read -r host port < <(url_host_port "$REDIS_URL" 6379)
  if [[ -n $IOTFLOW_REDIS_URL_GIVEN ]] || ! tcp_reachable "$host" "$port"; then
    ensure_redis
    [[ -n $IOTFLOW_REDIS_URL_GIVEN ]] && ! redis_durable "$host" "$port" &&
      warn "redis: $REDIS_URL (set by you) runs without an append-only file or with eviction: a restart may lose acknowledged points"
    return 0
  fi
  if redis_durable "$host" "$port"; then
    log "redis: using existing at $host:$port (append-only file, noeviction)"
    return 0
  fi
  local own
  if own="$(own_service_port redis "$RUN_DIR/redis.pid" redis-server)" && redis_durable 127.0.0.1 "$own"; then
    port="$own"
    log "redis: the one at $host:$port keeps nothing on disk (appendonly $(redis_config_get "$host" "$port" appendonly))"
    log "redis: using IoTFlow's own persistent Redis, already running on 127.0.0.1:$own"
  else
    log "redis: the one at $host:$port keeps nothing on disk (appendonly $(redis_config_get "$host" "$port" appendonly)," \
      "maxmemory-policy $(redis_config_get "$host" "$port" maxmemory-policy)): a restart would lose every" \
      "point queued and not yet stored, after its 202. Starting IoTFlow's own persistent Redis instead" \
      "(set REDIS_URL to use another)."
    own="$(first_free_port 6380)"
    redis_start "$own"
  fi
  export REDIS_URL="redis://127.0.0.1:$own"
}

# own_service_port NAME PIDFILE COMM -> the port our running service listens on (recorded at start).
own_service_port() {
  local pidfile="$2" pid portfile="$RUN_DIR/$1.port"
  [[ -f $pidfile && -f $portfile ]] || return 1
  pid="$(tr -d '[:space:]' <"$pidfile")"
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && [[ $(ps -o comm= -p "$pid" 2>/dev/null) == "$3"* ]] || return 1
  tr -d '[:space:]' <"$portfile"
}

# --------------------------------------------------------------- postgres ----

ensure_postgres() {
  local host port
  read -r host port < <(url_host_port "$DATABASE_URL" 5432)
  if tcp_reachable "$host" "$port"; then
    log "postgres: using existing at $host:$port"
    return 0
  fi
  is_local_host "$host" || die "postgres: $DATABASE_URL is not reachable"
  [[ -n $(pg_bindir) ]] || apt_install postgresql
  local bin pgdata="$DATA/postgres" logfile="$LOG_DIR/postgres.log"
  bin="$(pg_bindir)" || die "postgres: no /usr/lib/postgresql/*/bin after install"
  iotflow_dirs
  pg_prepare_dirs "$pgdata" "$logfile"
  if [[ ! -f $pgdata/PG_VERSION ]]; then
    log "postgres: initdb into $pgdata"
    as_pg_user "$bin/initdb" -D "$pgdata" --auth=trust --username=postgres \
      --encoding=UTF8 >>"$logfile" 2>&1 ||
      die_with_log "postgres: initdb failed" "$logfile"
  fi
  # The socket goes into the data dir: /var/run/postgresql may not exist.
  as_pg_user "$bin/pg_ctl" start -w -t 30 -D "$pgdata" -l "$logfile" \
    -o "-c listen_addresses=127.0.0.1 -p $port -k '$pgdata'" >/dev/null ||
    die_with_log "postgres: pg_ctl start failed" "$logfile"
  wait_until 20 "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" ||
    die_with_log "postgres: not ready on 127.0.0.1:$port" "$logfile"
  log "postgres: started on 127.0.0.1:$port (data $pgdata)"
}

# As root the server runs as `postgres`, which must own its data dir and log
# and be able to reach them through every parent directory.
pg_prepare_dirs() {
  local pgdata="$1" logfile="$2"
  mkdir -p "$pgdata"
  chmod 700 "$pgdata"
  touch "$logfile"
  is_root || return 0
  id postgres >/dev/null 2>&1 || die "postgres: system user 'postgres' is missing"
  chown postgres: "$pgdata" "$logfile"
  runuser -u postgres -- test -w "$pgdata" ||
    die "postgres: user 'postgres' cannot access $pgdata (a parent dir is private?);" \
      "set IOTFLOW_DATA_DIR to e.g. /var/tmp/iotflow"
}

# --------------------------------------------------------------- influxdb ----

influx_ping() { [[ $(http_status "${INFLUX_URL%/}/ping") == 204 ]]; }

ensure_influxdb() {
  if [[ $INFLUX_API != v1 ]]; then
    influx_ping && { log "influxdb: using existing at $INFLUX_URL ($INFLUX_API)"; return 0; }
    die "influxdb: INFLUX_API=$INFLUX_API needs an InfluxDB 2 server at $INFLUX_URL" \
      "(e.g. via docker compose); only v1 is started locally"
  fi
  if influx_ping; then
    log "influxdb: using existing at $INFLUX_URL"
    return 0
  fi
  local host port
  read -r host port < <(url_host_port "$INFLUX_URL" 8086)
  is_local_host "$host" || die "influxdb: $INFLUX_URL is not reachable"
  command -v influxd >/dev/null 2>&1 || apt_install influxdb
  iotflow_dirs
  mkdir -p "$DATA/influxdb"
  influxd_start "$port"
  wait_until 30 influx_ping ||
    die_with_log "influxdb: no /ping answer on 127.0.0.1:$port after 30 s" "$LOG_DIR/influxd.log"
  log "influxdb: started on 127.0.0.1:$port (data $DATA/influxdb)"
}

# Paths and ports come from env vars so the checked-in config stays generic.
# (Debian's 1.6 build reads REPORTING_ENABLED; upstream reads REPORTING_DISABLED.)
# setsid: a Ctrl+C in the terminal that ran start.sh must not reach influxd.
influxd_start() {
  local port="$1" logfile="$LOG_DIR/influxd.log" monitor=0 pid
  # With job control on (interactive shell), setsid would fork and $! would
  # not be influxd; keep it off while launching.
  [[ $- == *m* ]] && monitor=1 && set +m
  INFLUXDB_META_DIR="$DATA/influxdb/meta" \
    INFLUXDB_DATA_DIR="$DATA/influxdb/data" \
    INFLUXDB_DATA_WAL_DIR="$DATA/influxdb/wal" \
    INFLUXDB_HTTP_BIND_ADDRESS="127.0.0.1:$port" \
    INFLUXDB_BIND_ADDRESS="127.0.0.1:$((port + 2))" \
    INFLUXDB_REPORTING_DISABLED=true \
    INFLUXDB_REPORTING_ENABLED=false \
    INFLUXDB_HTTP_LOG_ENABLED=false \
    INFLUXDB_DATA_QUERY_LOG_ENABLED=false \
    INFLUXDB_LOGGING_LEVEL=warn \
    setsid nohup influxd run -config "$ROOT/infra/influxdb/influxdb.conf" \
    -pidfile "$RUN_DIR/influxd.pid" >>"$logfile" 2>&1 </dev/null &
  pid=$!
  ((monitor)) && set -m
  # Catch immediate failures (bad config, port in use) before polling.
  sleep 1
  kill -0 "$pid" 2>/dev/null || die_with_log "influxdb: influxd exited at once" "$logfile"
}

# -------------------------------------------------------------- mosquitto ----

ensure_mosquitto() {
  local host port
  read -r host port < <(url_host_port "$MQTT_URL" 1883)
  if tcp_reachable "$host" "$port"; then
    log "mosquitto: using existing at $host:$port"
    return 0
  fi
  is_local_host "$host" || die "mosquitto: $MQTT_URL is not reachable"
  mosquitto_start "$port"
}

# For `npm start`: the broker acknowledges devices' messages before the bridge sees them, so its
# settings decide whether they can be dropped. An MQTT_URL set by hand is used as given; otherwise
# IoTFlow runs Mosquitto with the project's config, on 1883, or on the next free port from 1884
# when 1883 is taken by a broker it did not start, and MQTT_URL points there.
ensure_project_mosquitto() {
  if [[ -n $IOTFLOW_MQTT_URL_GIVEN ]]; then
    [[ ${TLS:-} == 1 ]] && warn "TLS=1: MQTT_URL was set by hand, so the bridge uses $MQTT_URL as given (set MQTT_CA_FILE for an mqtts:// broker)"
    ensure_mosquitto
    return 0
  fi
  local port want_tls=
  [[ ${TLS:-} == 1 ]] && want_tls=1
  if port="$(own_service_port mosquitto "$RUN_DIR/mosquitto.pid" mosquitto)"; then
    local running_tls=
    [[ -f $RUN_DIR/mosquitto.tls ]] && running_tls=1
    if [[ $want_tls == "$running_tls" ]]; then
      log "mosquitto: using IoTFlow's own broker, already running on 127.0.0.1:$port"
    else
      log "mosquitto: restarting IoTFlow's own broker on 127.0.0.1:$port, ${want_tls:+with TLS}${want_tls:-without TLS}, as asked"
      mosquitto_stop_own
      mosquitto_start "$port"
    fi
  else
    port=1883
    [[ -n $want_tls ]] && port=8883
    if tcp_reachable 127.0.0.1 "$port"; then
      local taken="$port"
      port="$(first_free_port $((port + 1)))"
      log "mosquitto: $taken is taken by a broker IoTFlow did not start; its settings may drop messages" \
        "it acknowledged (Mosquitto's default max_queued_messages is 1000). Starting one with" \
        "infra/mosquitto/mosquitto.conf on 127.0.0.1:$port instead (set MQTT_URL to use another)."
    fi
    mosquitto_start "$port"
  fi
  if [[ -n $want_tls ]]; then
    export MQTT_URL="mqtts://127.0.0.1:$port" MQTT_CA_FILE="$DATA/tls/ca.pem"
  else
    export MQTT_URL="mqtt://127.0.0.1:$port"
  fi
}

# Stops the broker this checkout started (to start it again with other settings).
mosquitto_stop_own() {
  local pid
  pid="$(tr -d '[:space:]' <"$RUN_DIR/mosquitto.pid")"
  kill -TERM "$pid" 2>/dev/null || true
  wait_until 20 process_gone "$pid" || kill -KILL "$pid" 2>/dev/null || true
}
process_gone() { ! kill -0 "$1" 2>/dev/null; }

# TLS=1 npm start: a local CA and certificates under .iotflow/tls (infra/tls/certs.sh, made once
# and kept), the gateway on HTTPS with them, and (ensure_project_mosquitto) the broker's listener
# and the bridge on TLS. Node trusts the local CA (NODE_EXTRA_CA_CERTS) for the apps' own checks.
ensure_local_tls() {
  [[ ${TLS:-} == 1 ]] || return 0
  command -v openssl >/dev/null 2>&1 || apt_install openssl
  bash "$ROOT/infra/tls/certs.sh" local "$DATA/tls"
  export TLS_CERT_FILE="$DATA/tls/server.pem" TLS_KEY_FILE="$DATA/tls/server.key" \
    NODE_EXTRA_CA_CERTS="$DATA/tls/ca.pem"
  log "tls: local CA and certificates in $DATA/tls (the CA to trust: $DATA/tls/ca.pem)"
}

# Starts Mosquitto on 127.0.0.1:PORT with the project's config, data under $DATA/mosquitto.
mosquitto_start() {
  local port="$1"
  command -v mosquitto >/dev/null 2>&1 || [[ -x /usr/sbin/mosquitto ]] || apt_install mosquitto
  iotflow_dirs
  local conf="$DATA/mosquitto.conf" logfile="$LOG_DIR/mosquitto.log"
  mkdir -p "$DATA/mosquitto"
  touch "$logfile" "$RUN_DIR/mosquitto.pid"
  mosquitto_write_conf "$conf" "$port" "$logfile"
  # Started as root, mosquitto drops to the `mosquitto` user before it writes
  # its log, pid file and persistence: let that user write them.
  if is_root && id mosquitto >/dev/null 2>&1; then
    chown mosquitto: "$DATA/mosquitto" "$logfile" "$RUN_DIR/mosquitto.pid"
    # TLS=1: and read the server's key, which certs.sh leaves to its owner only.
    if [[ ${TLS:-} == 1 ]]; then
      chgrp mosquitto "$DATA/tls/server.key"
      chmod 640 "$DATA/tls/server.key"
    fi
  fi
  PATH="$PATH:/usr/sbin" mosquitto -d -c "$conf" || die_with_log "mosquitto: failed to start" "$logfile"
  wait_until 20 tcp_reachable 127.0.0.1 "$port" ||
    die_with_log "mosquitto: no answer on 127.0.0.1:$port after 20 s" "$logfile"
  printf '%s\n' "$port" >"$RUN_DIR/mosquitto.port"
  if [[ ${TLS:-} == 1 ]]; then touch "$RUN_DIR/mosquitto.tls"; else rm -f "$RUN_DIR/mosquitto.tls"; fi
  log "mosquitto: started on 127.0.0.1:$port with infra/mosquitto/mosquitto.conf${TLS:+ and the TLS listener of mosquitto-tls.conf} (data $DATA/mosquitto)"
}

# The project's config (infra/mosquitto/mosquitto.conf, also docker-compose's), with this machine's
# listener, paths and log file instead of the container's.
mosquitto_write_conf() {
  {
    printf '# Generated by infra/local/lib.sh from infra/mosquitto/mosquitto.conf; rewritten on every start.\n'
    sed -e "s|^listener 1883\$|listener $2 127.0.0.1|" \
      -e "s|^persistence_location .*|persistence_location $DATA/mosquitto/|" \
      -e "s|^log_dest stdout\$|log_dest file $3|" \
      "$ROOT/infra/mosquitto/mosquitto.conf"
    printf 'pid_file %s\n' "$RUN_DIR/mosquitto.pid"
    # TLS=1: the one listener takes the TLS settings of mosquitto-tls.conf's listener.
    if [[ ${TLS:-} == 1 ]]; then
      sed -n '/^listener /,/^$/{/^listener /d;/^$/d;p}' "$ROOT/infra/mosquitto/mosquitto-tls.conf" |
        sed -e "s|/mosquitto/config/tls/|$DATA/tls/|"
    fi
  } >"$1"
  grep -q "^listener $2 127.0.0.1\$" "$1" || die "mosquitto: infra/mosquitto/mosquitto.conf has no 'listener 1883' line to adapt"
}

# ----------------------------------------------------------- alertmanager ----

alertmanager_ready() { [[ $(http_status "${ALERTMANAGER_URL%/}/-/ready") == 200 ]]; }

# For `npm start` only: the alert evaluator delivers to Alertmanager (docs/alerts.md). A local one
# holds the alerts (its UI and API show them); route them to email, Slack … in its config.
ensure_alertmanager() {
  if alertmanager_ready; then
    log "alertmanager: using existing at $ALERTMANAGER_URL"
    return 0
  fi
  local host port
  read -r host port < <(url_host_port "$ALERTMANAGER_URL" 9093)
  is_local_host "$host" || die "alertmanager: $ALERTMANAGER_URL is not reachable"
  command -v prometheus-alertmanager >/dev/null 2>&1 || apt_install prometheus-alertmanager
  iotflow_dirs
  mkdir -p "$DATA/alertmanager"
  local conf="$DATA/alertmanager.yml" logfile="$LOG_DIR/alertmanager.log" monitor=0 pid
  [[ -f $conf ]] || cp "$ROOT/infra/alertmanager/alertmanager.yml" "$conf"
  [[ $- == *m* ]] && monitor=1 && set +m
  setsid nohup prometheus-alertmanager --config.file="$conf" --storage.path="$DATA/alertmanager" \
    --web.listen-address="127.0.0.1:$port" --cluster.listen-address= >>"$logfile" 2>&1 </dev/null &
  pid=$!
  ((monitor)) && set -m
  echo "$pid" >"$RUN_DIR/alertmanager.pid"
  wait_until 20 alertmanager_ready ||
    die_with_log "alertmanager: not ready on 127.0.0.1:$port after 20 s" "$logfile"
  log "alertmanager: started on 127.0.0.1:$port (config $conf)"
}

# ---------------------------------------------------------------- all four ----

ensure_services() {
  ensure_redis
  ensure_postgres
  ensure_influxdb
  ensure_mosquitto
}

# `npm start`'s services: the same, except that the queues and the broker must keep what they
# acknowledge (ensure_durable_redis, ensure_project_mosquitto); tests and the bench keep ensure_services.
ensure_services_for_start() {
  ensure_durable_redis
  ensure_postgres
  ensure_influxdb
  ensure_project_mosquitto
}

# Programs the test suite runs itself, beside the shared services: private influxd, redis-server
# PostgreSQL (initdb) and mosquitto instances to play outages and broker configurations,
# VictoriaMetrics to test the InfluxDB v2 write path, and the real MQTT clients (mosquitto_pub;
# mosquitto_passwd comes with mosquitto).
ensure_test_tools() {
  local missing=()
  command -v influxd >/dev/null 2>&1 || missing+=(influxdb)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  # The Sentinel setup of test/redis-ha.test.ts (testkit/redis-ha.ts).
  command -v redis-sentinel >/dev/null 2>&1 || missing+=(redis-sentinel)
  command -v victoria-metrics >/dev/null 2>&1 || missing+=(victoria-metrics)
  [[ -n $(pg_bindir) ]] || missing+=(postgresql)
  command -v mosquitto >/dev/null 2>&1 || [[ -x /usr/sbin/mosquitto ]] || missing+=(mosquitto)
  command -v mosquitto_pub >/dev/null 2>&1 || missing+=(mosquitto-clients)
  # Real InfluxDB clients the line protocol tests write with: the influx 1.x CLI and python3-influxdb
  # (for Debian's /usr/bin/python3, whatever python3 is first on the PATH).
  command -v influx >/dev/null 2>&1 || missing+=(influxdb-client)
  /usr/bin/python3 -c 'import influxdb' >/dev/null 2>&1 || missing+=(python3-influxdb)
  # The real Alertmanager the alert tests deliver to (each test starts a private one).
  command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
  if ((${#missing[@]})); then apt_install "${missing[@]}"; fi
  log "test tools: influxd, influx, python3-influxdb, redis-server, redis-sentinel, victoria-metrics, postgresql, mosquitto, mosquitto_pub, prometheus-alertmanager present"
}

# Programs the operator-surface tests run: Prometheus (and promtool) to scrape the apps and check
# their exposition, Chromium for the browser tests of Swagger UI and the queue dashboard.
ensure_operator_test_tools() {
  local missing=()
  # The Debian package `prometheus` ships both prometheus and promtool.
  if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
    missing+=(prometheus)
  fi
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  if ((${#missing[@]})); then apt_install "${missing[@]}"; fi
  log "operator test tools: prometheus, promtool, chromium present"
}
