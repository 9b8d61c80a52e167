import { queueCatalog } from '../catalog.js'
import { asError } from '../consume/as-error.js'
import type { BatchingWorkerOptions } from '../consume/batching-worker.js'
import { consumerReadiness, openConsumerConnection } from '../consume/consumer-redis.js'
import {
  batchingOf,
  consumedPartitions,
  type StoreConsumer,
  type WriterQueueConfig,
} from '../consume/store-consumer.js'
import { readRedisDurability } from '../redis/redis-durability.js'
import type { PartitionDepth } from '../status/queue-depths.js'
import { createAlertStreamConsumer } from './alert-stream-consumer.js'
import { createAlertStreamDepths } from './alert-stream-depths.js'
import { drainLegacyAlertQueue } from './legacy-alert-queue.js'

/** How often an evaluator looks for jobs a producer of an older release queued the old way. */
const LEGACY_CHECK_MS = 60_000

/** The alert evaluator's side of Redis: a consumer's, and the streams' depths per partition (for /metrics). */
export interface AlertStreamService extends StoreConsumer {
  depthsByPartition(): Promise<PartitionDepth[]>
}

/** The retry policy of an entry (the numbers of the old queue's, which the catalog keeps). */
export interface AlertStreamRetry {
  attempts?: number
  backoffMs?: number
}

/**
 * Everything the alert evaluator needs from Redis, as startStoreConsumer is for a writer: its
 * connection, the judging of the legacy alert-evaluate queue's jobs (at start, before the stream,
 * as they are older; then every minute, for producers of an older release), the stream consumer
 * on the partitions consumed (WRITER_PARTITIONS), and a readiness with the streams' depths.
 */
export async function startAlertStreamConsumer(
  config: WriterQueueConfig,
  store: Pick<BatchingWorkerOptions<'alertEvaluate'>, 'writeBatch' | 'classify' | 'logger'>,
  retry: AlertStreamRetry = {},
): Promise<AlertStreamService> {
  const { logger } = store
  const connection = await openConsumerConnection(config, logger)
  const { name, options: policy } = queueCatalog.alertEvaluate
  const { layout, partitions, queuePrefixes } = consumedPartitions(config, name, logger)

  const batching = batchingOf(config)
  const legacyOptions = { connection, queuePrefixes, ...batching, ...store }
  await drainLegacyAlertQueue(legacyOptions)
  let legacyDrain: Promise<unknown> = Promise.resolve()
  let stopping = false
  const legacyCheck = setInterval(() => {
    legacyDrain = legacyDrain
      .then(() => drainLegacyAlertQueue(legacyOptions, () => stopping))
      .catch((error) =>
        logger.warn({ queue: name, err: asError(error).message }, 'legacy queue check failed'),
      )
  }, LEGACY_CHECK_MS)

  const consumer = await createAlertStreamConsumer({
    connection,
    queuePrefixes,
    maxBatchPoints: batching.maxBatchPoints,
    lingerMs: batching.lingerMs,
    maxInFlightWrites: batching.maxInFlightWrites,
    minIdleMs: batching.lockDurationMs,
    claimIntervalMs: batching.stalledIntervalMs,
    shutdownDrainMs: batching.shutdownDrainMs,
    attempts: retry.attempts ?? policy.attempts,
    backoffMs: retry.backoffMs ?? policy.backoff.delay,
    ...store,
  })
  const depths = createAlertStreamDepths(connection, layout, partitions)

  let closing: Promise<void> | undefined
  return {
    connection,
    depthsByPartition: () => depths.readByPartition(),
    readiness: (probes) =>
      consumerReadiness(connection, probes, async () => {
        try {
          const [queues, durability] = await Promise.all([depths.read(), readRedisDurability(connection)])
          return { queues, redis_durability: durability }
        } catch {
          return undefined
        }
      }),
    close() {
      closing ??= (async () => {
        clearInterval(legacyCheck)
        stopping = true
        await Promise.all([consumer.close(), legacyDrain])
        await connection.quit().catch(() => connection.disconnect())
      })()
      return closing
    },
  }
}
