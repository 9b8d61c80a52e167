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
ensure_services
ensure_alertmanager

log "migrate: pnpm migrate"
pnpm migrate
log "build: pnpm build"
pnpm build

exec node infra/local/run-apps.mjs
