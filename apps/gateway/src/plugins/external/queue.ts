import type { RedisTarget } from '@iotflow/config'
import {
  type BatchEnqueuer,
  type BatchStatusReader,
  createBatchEnqueuer,
  createBatchStatusReader,
  createGroupCommitEnqueuer,
  createQueueDepths,
  createRedisConnection,
  type GathererLimits,
  type QueueDepths,
  type RedisConnection,
  type ReplicaAck,
  reportRedisDurability,
  type StoreRetryOverrides,
  waitUntilRedisReady,
} from '@iotflow/queue'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

declare module 'fastify' {
  interface FastifyInstance {
    redis: RedisConnection
    batchEnqueuer: BatchEnqueuer
    batchStatus: BatchStatusReader
    queueDepths: QueueDepths
  }
}

export interface QueuePluginOptions {
  redisTarget: RedisTarget
  queuePrefix: string
  /** Requests that arrive together are queued as one batch (see createGroupCommitEnqueuer). */
  groupCommit: GathererLimits
  /** Overrides of the store jobs' retry policy (STORE_JOB_ATTEMPTS, STORE_JOB_BACKOFF_MS). */
  storeJobRetry: StoreRetryOverrides
  /** REDIS_MIN_REPLICAS_ACK: a batch is acknowledged once that many replicas hold it. */
  replicasAck?: ReplicaAck
}

/**
 * The producer side of the queue: requests that arrive together are queued as one batch (group
 * commit; each still answered only once its own enqueue succeeded). Its Redis connection fails fast (no offline queue), so while
 * Redis is unreachable an enqueue rejects at once and the device is told 503, never left waiting.
 */
export default fp(
  async (fastify: FastifyInstance, options: QueuePluginOptions) => {
    const redis = createRedisConnection(options.redisTarget, 'producer')
    redis.on('error', (error) => fastify.log.warn({ err: error.message }, 'redis connection error'))
    // Redis down at start: wait for it (logging) rather than crash-loop.
    await waitUntilRedisReady(redis, fastify.log)
    await reportRedisDurability(redis, fastify.log)
    const batchEnqueuer = createGroupCommitEnqueuer(
      createBatchEnqueuer(redis, options.queuePrefix, options.storeJobRetry, {
        alertFanOut: () => fastify.alertRulesExist.current(),
        ...(options.replicasAck && { replicasAck: options.replicasAck }),
      }),
      options.groupCommit,
    )
    fastify.decorate<RedisConnection>('redis', redis)
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
  { name: 'queue', dependencies: ['alert-rule-presence'] },
)
