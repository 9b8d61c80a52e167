#!/usr/bin/env bash
# `npm start`: bring up the backing services, migrate, then run the three apps
# in the foreground (Ctrl+C stops the apps; `npm stop` also stops services).
set -euo pipefail
# shellcheck source=infra/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

iotflow_env_defaults
ensure_pnpm
ensure_node_modules
iotflow_dirs
ensure_local_tls
ensure_services_for_start
ensure_alertmanager

log "migrate: pnpm migrate"
pnpm migrate
# Migrated once here: an app restarted by the supervisor is back sooner without its own check.
export MIGRATE_ON_START="${MIGRATE_ON_START:-false}"
log "build: pnpm build"
pnpm build

exec node infra/local/run-apps.mjs
