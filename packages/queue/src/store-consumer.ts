import type { Redis } from 'ioredis'
import { createBatchCompletionWorker } from './batch-completion-worker.js'
import { type BatchingWorkerOptions, createBatchingWorker } from './batching-worker.js'
import type { StoreQueueKey } from './catalog.js'
import { createRedisConnection, waitUntilRedisReady, warnIfEvictionPossible } from './connection.js'

/** The part of a writer's config that concerns its queue (both writer configs satisfy it). */
export interface WriterQueueConfig {
  REDIS_URL: string
  QUEUE_PREFIX: string
  WRITER_CONCURRENCY: number
  WRITER_MAX_BATCH_POINTS: number
  WRITER_LINGER_MS: number
  WRITER_SHUTDOWN_DRAIN_MS: number
  WRITER_MAX_INFLIGHT_WRITES: number
}

export interface StoreConsumer {
  connection: Redis
  close(): Promise<void>
}

/**
 * Everything a store writer needs from Redis: a worker connection, the eviction check, the batching
 * worker on its store queue and the parent-completion worker. The writer brings only the write.
 */
export async function startStoreConsumer<K extends StoreQueueKey>(
  queue: K,
  config: WriterQueueConfig,
  store: Pick<BatchingWorkerOptions<K>, 'writeBatch' | 'classify' | 'logger'>,
): Promise<StoreConsumer> {
  const { logger } = store
  const connection = createRedisConnection(config.REDIS_URL, 'worker')
  connection.on('error', (error) => logger.warn({ err: error.message }, 'redis connection error'))
  await waitUntilRedisReady(connection, logger)
  await warnIfEvictionPossible(connection, logger)

  const batching = createBatchingWorker({
    queue,
    connection,
    queuePrefix: config.QUEUE_PREFIX,
    concurrency: config.WRITER_CONCURRENCY,
    maxBatchPoints: config.WRITER_MAX_BATCH_POINTS,
    lingerMs: config.WRITER_LINGER_MS,
    shutdownDrainMs: config.WRITER_SHUTDOWN_DRAIN_MS,
    maxInFlightWrites: config.WRITER_MAX_INFLIGHT_WRITES,
    ...store,
  })
  const completion = createBatchCompletionWorker(connection, config.QUEUE_PREFIX, logger)

  let closing: Promise<void> | undefined
  return {
    connection,
    close() {
      closing ??= (async () => {
        await Promise.all([batching.close(), completion.close()])
        await connection.quit().catch(() => connection.disconnect())
      })()
      return closing
    },
  }
}
