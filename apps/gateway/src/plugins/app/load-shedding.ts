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
 * for longer than INGEST_SHED_AFTER_MS, new telemetry requests are answered 503 with Retry-After at
 * once, in onRequest (before the body is read or the key looked up). Clients that send without
 * pause would otherwise queue inside the gateway: 100 of them against 100 requests/s wait a second
 * each, every one of them (Little's law). Refusing the excess keeps the accepted ones near the
 * bound and tells the refused ones at once, while the requests in progress keep the gateway busy:
 * throughput stays. It complements the backlog bound (backpressure.ts), which guards the stores;
 * this guards the gateway's own CPU, the bottleneck when the writers keep up.
 *
 * A request counts from the moment its body has arrived and been parsed (preValidation), not from
 * its first byte: a device uploading slowly over a poor link is not the gateway being busy, and
 * must not make it refuse everyone else.
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
