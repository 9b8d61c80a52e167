#!/usr/bin/env bash
# `npm test`: services up, then lint, typecheck and the vitest suite.
# Extra arguments go to vitest, e.g. `npm test -- packages/db`.
set -euo pipefail
# shellcheck source=infra/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

# Quieter, non-interactive output for CI logs; explicit settings still win.
export LOG_LEVEL="${LOG_LEVEL:-warn}"
export NO_UPDATE_NOTIFIER=1 npm_config_update_notifier=false

iotflow_env_defaults
ensure_pnpm
ensure_node_modules
ensure_services
ensure_test_tools
ensure_operator_test_tools

log "test: pnpm lint"
pnpm lint
log "test: pnpm typecheck"
pnpm typecheck
log "test: pnpm test:run $*"
pnpm test:run "$@"
