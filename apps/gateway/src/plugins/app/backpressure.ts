import type { RefusalReason } from '@iotflow/metrics'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { refuseBeforeBody } from '../../lib/ingest-answers.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by a hook that refused the request for a reason its status code does not tell. */
    ingestRefusal: RefusalReason | null
  }
}

const REFUSAL = {
  reason: 'backlog',
  message: 'the queue backlog is over its limit; nothing was queued, retry later',
  maxRetryAfterSeconds: 3,
} as const

/**
 * Backpressure: while a store queue holds BACKLOG_MAX_POINTS points or more not yet stored, every
 * telemetry ingest route answers 503 with Retry-After. Decided in onRequest, before the body is
 * read and before the key is looked up, from the monitor's last reading (no Redis call), so that
 * under overload a refusal costs next to nothing and the gateway keeps answering.
 */
export default fp(
  async (fastify: FastifyInstance) => {
    const monitor = fastify.backlog
    fastify.decorateRequest('ingestRefusal', null)

    fastify.addHook('onRequest', async (request, reply) => {
      if (!request.routeOptions.config.ingestTransport || !monitor.overLimit) return
      return refuseBeforeBody(request, reply, REFUSAL)
    })
  },
  { name: 'backpressure', dependencies: ['ingest'] },
)
