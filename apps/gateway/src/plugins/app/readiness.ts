import { type BacklogReport, type JobCounts, type RedisDurability, readRedisDurability } from '@iotflow/queue'
import { type DependencyState, probe } from '@iotflow/runtime'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

export interface GatewayReadiness {
  ready: boolean
  dependencies: { redis: DependencyState; postgres: DependencyState }
  queues: Record<string, JobCounts> | undefined
  /**
   * The backlog against its limit. Over it, ingest answers 503, yet the gateway stays ready: it
   * answers, queries work, and taking it out of a load balancer would only move the 503s elsewhere.
   */
  backlog: BacklogReport | undefined
  /** What Redis promises to keep (append-only file, no eviction): shown, it does not decide readiness. */
  redisDurability: RedisDurability | undefined
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Probes what the gateway needs (Redis, Postgres) and reads the queue depths and backlog. */
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
      const [queues, backlog, redisDurability] =
        redis.status === 'up'
          ? await Promise.all([
              fastify.queueDepths.read().catch(() => undefined),
              fastify.backlog.readNow().catch(() => undefined),
              readRedisDurability(fastify.redis).catch(() => undefined),
            ])
          : [undefined, undefined, undefined]
      return {
        ready: redis.status === 'up' && postgres.status === 'up',
        dependencies: { redis, postgres },
        queues,
        backlog,
        redisDurability,
      }
    })
  },
  { name: 'readiness', dependencies: ['postgres', 'queue', 'backpressure'] },
)
