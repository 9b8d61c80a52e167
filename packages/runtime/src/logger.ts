import { pino } from 'pino'

/** Credentials never reach a log line, whatever logs them. */
export const REDACTED_PATHS = [
  'req.headers["x-api-key"]',
  'req.headers.authorization',
  'headers["x-api-key"]',
  'headers.authorization',
  'api_key',
  '*.api_key',
  'apiKey',
  '*.apiKey',
  'token',
  '*.token',
]

export function createLogger(name: string, level: string) {
  return pino({ name, level, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } })
}

export type Logger = ReturnType<typeof createLogger>
