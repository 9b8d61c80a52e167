import { type DestinationStream, pino } from 'pino'

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

/** A JSON logger on stdout, or on `destination` (a test reading what an app logged). */
export function createLogger(name: string, level: string, destination?: DestinationStream) {
  return pino({ name, level, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, destination)
}

/**
 * What a component logs through. The process's pino logger and Fastify's are one; a component that
 * needs less takes `Pick<Logger, 'warn'>`, so a test can hand it a silent object.
 */
export interface Logger {
  debug(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

const CREDENTIAL_PARAMS = /([?&](?:api_key|apikey|key|token|access_token|password)=)[^&#]*/gi

/** A URL fit for a log line: credential-looking query parameters are masked. */
export const redactUrl = (url: string) => url.replace(CREDENTIAL_PARAMS, '$1[redacted]')
