import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { isLevelEnabled } from '../../lib/lazy-child-logger.js'

/**
 * One line per request, once it is answered: request id, device id (when a device key was used),
 * method, URL (credentials masked by the `req` serializer), status and time taken. Written by the
 * app's logger with those fields, so no per-request child logger is built for it (see
 * LazyChildLogger); replaces Fastify's own pair of "incoming request"/"request completed" lines.
 */
export default fp(
  async (fastify: FastifyInstance) => {
    fastify.addHook('onResponse', async (request, reply) => {
      if (!isLevelEnabled(fastify.log, 'info')) return
      fastify.log.info(
        {
          reqId: request.id,
          ...(request.device && { device_id: request.device.id }),
          req: request,
          res: { statusCode: reply.statusCode },
          responseTime: reply.elapsedTime,
        },
        'request completed',
      )
    })
  },
  { name: 'request-logging', dependencies: ['authentication'] },
)
