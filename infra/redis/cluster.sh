#!/usr/bin/env bash
# A local Redis Cluster for IoTFlow: 3 masters, each with one replica, on 127.0.0.1, durable
# (infra/redis/redis.conf: append-only file, noeviction). Needs redis-server and redis-cli 7.
#
#   bash infra/redis/cluster.sh start     # ports 7000-7005 (REDIS_CLUSTER_BASE_PORT to move them)
#   REDIS_CLUSTER_NODES=127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002 npm start
#   bash infra/redis/cluster.sh stop      # stops the nodes, keeps their data
#   bash infra/redis/cluster.sh destroy   # stops them and removes their data
#
# Data, logs and pidfiles in $IOTFLOW_DATA_DIR/redis-cluster (default .iotflow/redis-cluster).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="${IOTFLOW_DATA_DIR:-$ROOT/.iotflow}/redis-cluster"
BASE="${REDIS_CLUSTER_BASE_PORT:-7000}"
PORTS=("$BASE" $((BASE + 1)) $((BASE + 2)) $((BASE + 3)) $((BASE + 4)) $((BASE + 5)))

start() {
  for port in "${PORTS[@]}"; do
    mkdir -p "$DIR/$port"
    if redis-cli -p "$port" ping >/dev/null 2>&1; then
      echo "node $port: already running"
      continue
    fi
    # Each node its own copy of the config (a node may rewrite it: CONFIG REWRITE).
    [[ -f $DIR/$port/redis.conf ]] || cp "$ROOT/infra/redis/redis.conf" "$DIR/$port/redis.conf"
    redis-server "$DIR/$port/redis.conf" --daemonize yes --bind 127.0.0.1 --port "$port" \
      --dir "$DIR/$port" --pidfile "$DIR/$port/redis.pid" --logfile "$DIR/$port/redis.log" --save "" \
      --cluster-enabled yes --cluster-config-file "$DIR/$port/nodes.conf" --cluster-node-timeout 5000
  done
  for port in "${PORTS[@]}"; do
    for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break || sleep 0.1; done
  done
  # Created once: a restarted node finds the cluster again in its nodes.conf.
  if ! redis-cli -p "$BASE" cluster info | grep -q 'cluster_known_nodes:6'; then
    redis-cli --cluster create $(printf '127.0.0.1:%s ' "${PORTS[@]}") --cluster-replicas 1 --cluster-yes
  fi
  for _ in $(seq 100); do
    redis-cli -p "$BASE" cluster info | grep -q 'cluster_state:ok' && break || sleep 0.2
  done
  redis-cli -p "$BASE" cluster info | grep cluster_state
  echo "REDIS_CLUSTER_NODES=127.0.0.1:${PORTS[0]},127.0.0.1:${PORTS[1]},127.0.0.1:${PORTS[2]}"
}

stop() {
  for port in "${PORTS[@]}"; do
    [[ -f $DIR/$port/redis.pid ]] || continue
    kill "$(cat "$DIR/$port/redis.pid")" 2>/dev/null || true
    rm -f "$DIR/$port/redis.pid"
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
  echo "usage: bash infra/redis/cluster.sh start|stop|destroy" >&2
  exit 2
  ;;
esac
