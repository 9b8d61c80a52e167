import type { RedisTarget } from '@iotflow/config'
import {
  type BatchStatusReader,
  createBatchStatusReader,
  createQueueDepths,
  createRedisConnection,
  type QueueDepths,
  type QueueLayout,
  type RedisConnection,
  reportRedisDurability,
  waitUntilRedisReady,
  warnOnRedisErrors,
} from '@iotflow/queue'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

declare module 'fastify' {
  interface FastifyInstance {
    redis: RedisConnection
    batchStatus: BatchStatusReader
    queueDepths: QueueDepths
  }
}

export interface QueuePluginOptions {
  redisTarget: RedisTarget
  /** QUEUE_PREFIX and QUEUE_PARTITIONS: the depths and batch statuses cover every partition. */
  queues: QueueLayout
}

/**
 * The producer's Redis connection, and what reads the queues (batch status, depths). It fails fast
 * (no offline queue), so while Redis is unreachable an enqueue rejects at once and the device is
 * told 503, never left waiting. The ingest plugin queues through it.
 */
export default fp(
  async (fastify: FastifyInstance, options: QueuePluginOptions) => {
    const redis = createRedisConnection(options.redisTarget, 'producer')
    warnOnRedisErrors(redis, fastify.log)
    // Redis down at start: wait for it (logging) rather than crash-loop.
    await waitUntilRedisReady(redis, fastify.log)
    await reportRedisDurability(redis, fastify.log)
    fastify.decorate<RedisConnection>('redis', redis)
    const queueDepths = createQueueDepths(redis, options.queues)
    const batchStatus = createBatchStatusReader(redis, options.queues)
    fastify.decorate('batchStatus', batchStatus)
    fastify.decorate('queueDepths', queueDepths)
    fastify.addHook('onClose', async () => {
      await batchStatus.close()
      await queueDepths.close()
      await redis.quit().catch(() => redis.disconnect())
    })
  },
  { name: 'queue' },
)
