import { Worker } from 'bullmq'
import type { Logger } from './batching-worker.js'
import { bullPrefix, type QueuePayloads, queueCatalog } from './catalog.js'
import type { RedisConnection } from './connection.js'

/**
 * Completes parent jobs once all their store jobs are done, so a batch reads `stored` and the parent
 * queue never grows without bound. Cheap: run one in every writer process.
 */
export function createBatchCompletionWorker(
  connection: RedisConnection,
  queuePrefix: string,
  logger: Logger,
) {
  const worker = new Worker<QueuePayloads['batches']>(
    queueCatalog.batches.name,
    async (job) => ({ stored_at: Date.now(), points: job.data.points }),
    { connection, prefix: bullPrefix(queuePrefix), concurrency: 50 },
  )
  worker.on('error', (error) => logger.error({ err: error.message }, 'batch completion worker error'))
  return worker
}
