import type { GatewayConfig } from '@iotflow/config'
import { REDACTED_PATHS, redactUrl } from '@iotflow/runtime'
import type { FastifyRequest, FastifyServerOptions } from 'fastify'

/**
 * The gateway's pino options: JSON lines, credentials redacted, including a key a client put in
 * the query string by mistake. Tests add a stream to read them.
 */
export function gatewayLoggerOptions(config: Pick<GatewayConfig, 'LOG_LEVEL'>) {
  return {
    level: config.LOG_LEVEL,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    serializers: {
      req: (request: FastifyRequest) => ({
        method: request.method,
        url: redactUrl(request.url),
        host: request.host,
        remoteAddress: request.ip,
      }),
    },
  } satisfies FastifyServerOptions['logger']
}
