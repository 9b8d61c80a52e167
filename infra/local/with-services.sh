#!/usr/bin/env bash
# Runs a command once the local services are up (Redis, PostgreSQL, InfluxDB, Mosquitto), as
# `npm start` and `npm test` bring them up: `pnpm bench`, `pnpm bench:query` and `pnpm simulate`
# work on a fresh machine too.
set -euo pipefail
# shellcheck source=infra/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

iotflow_env_defaults
ensure_node_modules
ensure_services
exec "$@"
