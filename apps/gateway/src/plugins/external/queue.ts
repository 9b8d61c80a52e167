import {
  type BatchEnqueuer,
  type BatchStatusReader,
  createBatchEnqueuer,
  createBatchStatusReader,
  createQueueDepths,
  createRedisConnection,
  type QueueDepths,
  waitUntilRedisReady,
  warnIfEvictionPossible,
} from '@iotflow/queue'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'

declare module 'fastify' {
  interface FastifyInstance {
    redis: Redis
    batchEnqueuer: BatchEnqueuer
    batchStatus: BatchStatusReader
    queueDepths: QueueDepths
  }
}

export interface QueuePluginOptions {
  redisUrl: string
  queuePrefix: string
}

/**
 * The producer side of the queue. Its Redis connection fails fast (no offline queue), so while
 * Redis is unreachable an enqueue rejects at once and the device is told 503, never left waiting.
 */
export default fp(
  async (fastify: FastifyInstance, options: QueuePluginOptions) => {
    const redis = createRedisConnection(options.redisUrl, 'producer')
    redis.on('error', (error) => fastify.log.warn({ err: error.message }, 'redis connection error'))
    // Redis down at start: wait for it (logging) rather than crash-loop.
    await waitUntilRedisReady(redis, fastify.log)
    await warnIfEvictionPossible(redis, fastify.log)
    const batchEnqueuer = createBatchEnqueuer(redis, options.queuePrefix)
    fastify.decorate('redis', redis)
    const queueDepths = createQueueDepths(redis, options.queuePrefix)
    const batchStatus = createBatchStatusReader(redis, options.queuePrefix)
    fastify.decorate('batchEnqueuer', batchEnqueuer)
    fastify.decorate('batchStatus', batchStatus)
    fastify.decorate('queueDepths', queueDepths)
    fastify.addHook('onClose', async () => {
      await batchEnqueuer.close()
      await batchStatus.close()
      await queueDepths.close()
      await redis.quit().catch(() => redis.disconnect())
    })
  },
  { name: 'queue' },
)
