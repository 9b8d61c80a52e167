#!/usr/bin/env bash
# A local Redis Sentinel setup for IoTFlow on 127.0.0.1: a primary with 2 replicas, durable
# (infra/redis/redis.conf), watched by 3 sentinels (quorum 2) under the name `iotflow`.
# Needs redis-server 7 and redis-sentinel (Debian: apt-get install redis-sentinel).
#
#   bash infra/redis/sentinel.sh start    # data 6390-6392, sentinels 26390-26392
#                                         # (REDIS_SENTINEL_BASE_PORT, REDIS_DATA_BASE_PORT move them)
#   REDIS_SENTINELS=127.0.0.1:26390,127.0.0.1:26391,127.0.0.1:26392 REDIS_SENTINEL_NAME=iotflow npm start
#   redis-cli -p 26390 sentinel failover iotflow   # a failover, to watch the apps follow it
#   bash infra/redis/sentinel.sh stop     # stops everything, keeps the data
#   bash infra/redis/sentinel.sh destroy  # stops and removes the data and the sentinels' state
#
# Data, logs, pidfiles and sentinel configs in $IOTFLOW_DATA_DIR/redis-sentinel (default .iotflow/).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="${IOTFLOW_DATA_DIR:-$ROOT/.iotflow}/redis-sentinel"
DATA_BASE="${REDIS_DATA_BASE_PORT:-6390}"
SENTINEL_BASE="${REDIS_SENTINEL_BASE_PORT:-26390}"
NAME="${REDIS_SENTINEL_NAME:-iotflow}"
DATA_PORTS=("$DATA_BASE" $((DATA_BASE + 1)) $((DATA_BASE + 2)))
SENTINEL_PORTS=("$SENTINEL_BASE" $((SENTINEL_BASE + 1)) $((SENTINEL_BASE + 2)))

wait_ping() {
  for _ in $(seq 50); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0 || sleep 0.1; done
  echo "no answer on port $1" >&2
  return 1
}

start() {
  local primary="${DATA_PORTS[0]}"
  for port in "${DATA_PORTS[@]}"; do
    mkdir -p "$DIR/$port"
    redis-cli -p "$port" ping >/dev/null 2>&1 && continue
    # Each node its own copy of the config: the sentinels rewrite it (CONFIG REWRITE) when they
    # change who replicates whom, so a restarted node comes back in the role it last had.
    if [[ ! -f $DIR/$port/redis.conf ]]; then
      cp "$ROOT/infra/redis/redis.conf" "$DIR/$port/redis.conf"
      [[ $port == "$primary" ]] || echo "replicaof 127.0.0.1 $primary" >>"$DIR/$port/redis.conf"
    fi
    redis-server "$DIR/$port/redis.conf" --daemonize yes --bind 127.0.0.1 --port "$port" \
      --dir "$DIR/$port" --pidfile "$DIR/$port/redis.pid" --logfile "$DIR/$port/redis.log" --save "" \
      --replica-announce-ip 127.0.0.1
    wait_ping "$port"
  done
  for port in "${SENTINEL_PORTS[@]}"; do
    mkdir -p "$DIR/sentinel-$port"
    redis-cli -p "$port" ping >/dev/null 2>&1 && continue
    local conf="$DIR/sentinel-$port/sentinel.conf"
    # The sentinel rewrites its config as it learns (the current primary): written once.
    [[ -f $conf ]] || cat >"$conf" <<CONF
bind 127.0.0.1
port $port
dir $DIR/sentinel-$port
sentinel announce-ip 127.0.0.1
sentinel monitor $NAME 127.0.0.1 $primary 2
sentinel down-after-milliseconds $NAME 5000
sentinel failover-timeout $NAME 60000
sentinel parallel-syncs $NAME 1
CONF
    redis-sentinel "$conf" --daemonize yes --pidfile "$DIR/sentinel-$port/sentinel.pid" \
      --logfile "$DIR/sentinel-$port/sentinel.log"
    wait_ping "$port"
  done
  echo "primary now: $(redis-cli -p "${SENTINEL_PORTS[0]}" sentinel get-master-addr-by-name "$NAME" | paste -sd:)"
  echo "REDIS_SENTINELS=$(printf '127.0.0.1:%s,' "${SENTINEL_PORTS[@]}" | sed 's/,$//') REDIS_SENTINEL_NAME=$NAME"
}

stop() {
  for pidfile in "$DIR"/sentinel-*/sentinel.pid "$DIR"/*/redis.pid; do
    [[ -f $pidfile ]] || continue
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  done
}

case "${1:-}" in
start) start ;;
stop) stop ;;
destroy)
  stop
  sleep 1
  rm -rf "$DIR"
  ;;
*)
  echo "usage: bash infra/redis/sentinel.sh start|stop|destroy" >&2
  exit 2
  ;;
esac
