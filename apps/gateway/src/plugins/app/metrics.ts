import {
  createMetrics,
  exposition,
  type Metrics,
  pointsInBody,
  recordIngest,
  refusalReasonOf,
  type Transport,
} from '@iotflow/metrics'
import { backlogByPartition } from '@iotflow/queue'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
  }
  interface FastifyRequest {
    /** Points an ingest route queued, when its body is not JSON telemetry (line protocol). */
    ingestedPoints: number | null
  }
  interface FastifyContextConfig {
    /** Marks a telemetry ingest route: its outcomes count as accepted or refused points. */
    ingestTransport?: Transport
  }
}

/**
 * The gateway's metrics and GET /metrics. Ingest outcomes are counted from each response of an
 * ingest route, so a refusal counts whichever hook or handler produced it (auth, body limit,
 * validation, enqueue).
 */
export default fp(
  async (fastify: FastifyInstance) => {
    const metrics = createMetrics()
    fastify.decorate('metrics', metrics)
    metrics.readOnScrape({
      dependencies: async () => (await fastify.readiness()).dependencies,
      queues: () => fastify.queueDepths.readByPartition(),
      backlog: async () => backlogByPartition(await fastify.backlog.readNow()),
    })
    metrics.backlogLimit.set(fastify.backlog.limit)
    fastify.decorateRequest('ingestedPoints', null)

    fastify.addHook('onResponse', async (request, reply) => {
      const route = request.routeOptions.url ?? 'unmatched'
      metrics.httpRequestDuration.observe(
        { method: request.method, route, status_code: String(reply.statusCode) },
        reply.elapsedTime / 1000,
      )
      const transport = request.routeOptions.config.ingestTransport
      if (!transport) return
      // 202: JSON telemetry queued; 204: line protocol queued.
      const accepted = reply.statusCode === 202 || reply.statusCode === 204
      const outcome = accepted ? 'accepted' : (request.ingestRefusal ?? refusalReasonOf(reply.statusCode))
      recordIngest(metrics, transport, outcome, request.ingestedPoints ?? pointsInBody(request.body))
    })

    fastify.get(
      '/metrics',
      {
        schema: {
          tags: ['operations'],
          summary: 'Prometheus metrics (text exposition format)',
          produces: ['text/plain'],
          response: { 200: { type: 'string', description: 'Prometheus text format 0.0.4' } },
        },
      },
      async (_request, reply) => {
        const { contentType, body } = await exposition(metrics.registry)
        return reply.type(contentType).send(body)
      },
    )
  },
  { name: 'metrics', dependencies: ['readiness', 'queue', 'backpressure'] },
)
