/**
 * Socket and DNS error codes that mean the other side is not there for us now, whichever client
 * saw them: a store's classifier reads them as "unavailable" (wait, do not spend an attempt).
 */
export const CONNECTION_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EPIPE',
  'EAI_AGAIN',
])

/** Whether `error` carries one of CONNECTION_ERROR_CODES. */
export function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && CONNECTION_ERROR_CODES.has(code)
}
