import { type RedisTargetEnv, type WriterPartitionsEnv, writerPartitionsOf } from '@iotflow/config'
import type { Logger, ReadinessReport } from '@iotflow/runtime'
import { readBacklogByPartition } from '../backlog/backlog.js'
import { type BacklogReport, backlogReport } from '../backlog/backlog-monitor.js'
import { type BatchQueueKey, queueCatalog, storeQueues } from '../catalog.js'
import { partitionPrefix, type QueueLayout, queueLayoutOf } from '../partitions.js'
import type { RedisConnection } from '../redis/connection.js'
import { type RedisDurability, readRedisDurability } from '../redis/redis-durability.js'
import { createQueueDepths, type JobCounts } from '../status/queue-depths.js'
import { createBatchCompletionWorker } from './batch-completion-worker.js'
import { type BatchingWorkerOptions, createBatchingWorker } from './batching-worker.js'
import { consumerReadiness, openConsumerConnection } from './consumer-redis.js'
import { watchWriterHolds } from './writer-hold.js'

/** The part of a writer's config that concerns its queue (both writer configs satisfy it). */
export interface WriterQueueConfig extends RedisTargetEnv, WriterPartitionsEnv {
  QUEUE_PREFIX: string
  WRITER_CONCURRENCY: number
  WRITER_MAX_BATCH_POINTS: number
  WRITER_LINGER_MS: number
  WRITER_SHUTDOWN_DRAIN_MS: number
  WRITER_MAX_INFLIGHT_WRITES: number
  WRITER_LOCK_DURATION_MS: number
  WRITER_STALLED_INTERVAL_MS: number
  /** Only for the store queues, which have a backlog. */
  BACKLOG_MAX_POINTS?: number
}

/** The partitions a consumer consumes (WRITER_PARTITIONS, by default all of them), said when several. */
export function consumedPartitions(
  config: WriterQueueConfig,
  queue: string,
  logger: Pick<Logger, 'info'>,
): { layout: QueueLayout; partitions: number[]; queuePrefixes: string[] } {
  const layout = queueLayoutOf(config)
  const partitions = writerPartitionsOf(config)
  const queuePrefixes = partitions.map((partition) => partitionPrefix(layout, partition))
  if (layout.partitions > 1) logger.info({ queue, partitions }, 'consuming these queue partitions')
  return { layout, partitions, queuePrefixes }
}

/** The batching numbers of a consumer's config (WRITER_*), as a batching worker takes them. */
export const batchingOf = (config: WriterQueueConfig) => ({
  concurrency: config.WRITER_CONCURRENCY,
  maxBatchPoints: config.WRITER_MAX_BATCH_POINTS,
  lingerMs: config.WRITER_LINGER_MS,
  shutdownDrainMs: config.WRITER_SHUTDOWN_DRAIN_MS,
  maxInFlightWrites: config.WRITER_MAX_INFLIGHT_WRITES,
  lockDurationMs: config.WRITER_LOCK_DURATION_MS,
  stalledIntervalMs: config.WRITER_STALLED_INTERVAL_MS,
})

/** A writer's /health/ready: Redis and its store, its queue's depths and backlog, what Redis promises. */
export type WriterReadiness = ReadinessReport & {
  queues?: Record<string, JobCounts>
  backlog?: BacklogReport
  redis_durability?: RedisDurability
}

export interface StoreConsumer {
  connection: RedisConnection
  /** Probes Redis and `probes` (the store); when Redis is up, adds this queue's depths, backlog and Redis's durability. */
  readiness(probes: Record<string, () => Promise<unknown>>): Promise<WriterReadiness>
  close(): Promise<void>
}

/**
 * Everything a store writer needs from Redis: a worker connection, the durability report, the batching
 * worker on its store queue and the parent-completion worker. The writer brings only the write.
 * The alert evaluator consumes its queue the same way; its queue has no backlog and its jobs no
 * parent to complete.
 */
export async function startStoreConsumer<K extends BatchQueueKey>(
  queue: K,
  config: WriterQueueConfig,
  store: Pick<BatchingWorkerOptions<K>, 'writeBatch' | 'classify' | 'logger'>,
): Promise<StoreConsumer> {
  const { logger } = store
  const connection = await openConsumerConnection(config, logger)

  const { layout, partitions, queuePrefixes } = consumedPartitions(config, queue, logger)

  const batching = createBatchingWorker({ queue, connection, queuePrefixes, ...batchingOf(config), ...store })
  const isStoreQueue = (storeQueues as readonly BatchQueueKey[]).includes(queue)
  const completions = isStoreQueue
    ? queuePrefixes.map((queuePrefix) => createBatchCompletionWorker(connection, queuePrefix, logger))
    : []
  // A backup that died holding the store queues paused would stop every writer for good: its hold
  // is a lease, and the writers lift it once it lapses (writer-hold.ts).
  const holdWatch = isStoreQueue ? watchWriterHolds(connection, layout, logger) : undefined
  const depths = createQueueDepths(connection, layout, [queue], partitions)
  const { name } = queueCatalog[queue]

  /** This queue's depths and backlog in the partitions consumed; undefined when Redis does not answer. */
  async function queueState() {
    try {
      const [queues, byPartition, durability] = await Promise.all([
        depths.read(),
        readBacklogByPartition(connection, layout),
        readRedisDurability(connection),
      ])
      if (!isStoreQueue || config.BACKLOG_MAX_POINTS === undefined)
        return { queues, redis_durability: durability }
      const ours = Object.fromEntries(
        partitions.map((partition) => [partition, { [name]: byPartition[partition]?.[name] ?? 0 }]),
      )
      return {
        queues,
        backlog: backlogReport(ours, config.BACKLOG_MAX_POINTS, layout),
        redis_durability: durability,
      }
    } catch {
      return undefined
    }
  }

  let closing: Promise<void> | undefined
  return {
    connection,
    readiness: (probes) => consumerReadiness(connection, probes, queueState),
    close() {
      closing ??= (async () => {
        await Promise.all([
          batching.close(),
          ...completions.map((completion) => completion.close()),
          holdWatch?.close(),
        ])
        await depths.close()
        await connection.quit().catch(() => connection.disconnect())
      })()
      return closing
    },
  }
}
