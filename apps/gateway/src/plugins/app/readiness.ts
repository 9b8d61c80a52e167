import type { JobCounts } from '@iotflow/queue'
import { type DependencyState, probe } from '@iotflow/runtime'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

export interface GatewayReadiness {
  ready: boolean
  dependencies: { redis: DependencyState; postgres: DependencyState }
  queues: Record<string, JobCounts> | undefined
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Probes what the gateway needs (Redis, Postgres) and reads the queue depths. */
    readiness(): Promise<GatewayReadiness>
  }
}

/** One readiness check, read by /health/ready and by the dependency gauges of /metrics. */
export default fp(
  async (fastify: FastifyInstance) => {
    fastify.decorate('readiness', async (): Promise<GatewayReadiness> => {
      const [redis, postgres] = await Promise.all([
        probe(() => fastify.redis.ping()),
        probe(() => fastify.sql`SELECT 1`),
      ])
      const queues =
        redis.status === 'up' ? await fastify.queueDepths.read().catch(() => undefined) : undefined
      return {
        ready: redis.status === 'up' && postgres.status === 'up',
        dependencies: { redis, postgres },
        queues,
      }
    })
  },
  { name: 'readiness', dependencies: ['postgres', 'queue'] },
)
