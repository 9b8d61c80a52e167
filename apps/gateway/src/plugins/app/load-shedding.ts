import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { refuseBeforeBody } from '../../lib/ingest-answers.js'

export interface LoadSheddingOptions {
  /** INGEST_SHED_AFTER_MS; 0 never sheds. */
  shedAfterMs: number
}

const REFUSAL = {
  reason: 'overloaded',
  message: 'the gateway is overloaded; nothing was queued, retry later',
  maxRetryAfterSeconds: 2,
} as const

/**
 * Load shedding: while the oldest telemetry request in progress has been in the gateway's hands
 * longer than INGEST_SHED_AFTER_MS, new ones are answered 503 in onRequest, so clients that never
 * pause get a quick refusal instead of all queueing inside the gateway (the backlog bound guards the
 * stores; this guards the gateway's CPU). A request counts from when its body was parsed, so a slow
 * upload is not mistaken for a busy gateway.
 */
export default fp(
  async (fastify: FastifyInstance, options: LoadSheddingOptions) => {
    if (options.shedAfterMs === 0) return
    // Start times of the ingest requests in progress; a Map keeps insertion order, so the first
    // entry is always the oldest still in progress.
    const inProgress = new Map<FastifyRequest, number>()
    const oldestStart = () => inProgress.values().next().value as number | undefined

    fastify.addHook('onRequest', async (request, reply) => {
      if (!request.routeOptions.config.ingestTransport) return
      const oldest = oldestStart()
      if (oldest !== undefined && performance.now() - oldest > options.shedAfterMs) {
        return refuseBeforeBody(request, reply, REFUSAL)
      }
    })
    fastify.addHook('preValidation', async (request, reply) => {
      if (!request.routeOptions.config.ingestTransport) return
      inProgress.set(request, performance.now())
      // 'close' comes once the answer is sent or the connection is gone, whatever happened between.
      reply.raw.once('close', () => inProgress.delete(request))
    })
  },
  { name: 'load-shedding', dependencies: ['backpressure'] },
)
