import { isConnectionError } from '@iotflow/runtime'

/** postgres.js's own codes for a connection that could not be made or was lost. */
const POSTGRES_CONNECTION_CODES = new Set([
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
])

/**
 * SQLSTATE classes: 08 connection, 57 operator intervention (shutdown, restart), 53 insufficient
 * resources mean the server is not there for us now; 22 data exception and 23 integrity violation
 * mean this data will never go in; the rest (serialization failures, deadlocks, …) retry. The
 * answer is the queue's FailureKind (packages/queue), spelled out here so db needs no queue.
 */
export function classifyPostgresError(error: Error): 'unavailable' | 'permanent' | 'transient' {
  const code = (error as { code?: string }).code ?? ''
  if (isConnectionError(error) || POSTGRES_CONNECTION_CODES.has(code) || /^(08|57|53)/.test(code))
    return 'unavailable'
  if (/^(22|23)/.test(code)) return 'permanent'
  return 'transient'
}
