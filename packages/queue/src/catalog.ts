import type { BatchSummaryPayload, StoreBatchPayload } from '@iotflow/contracts'
import type { JobsOptions } from 'bullmq'

/** Store jobs retry with exponential backoff and jitter: 1 s, 2 s, 4 s … (about 68 min in all). */
const storeJobOptions = {
  attempts: 12,
  backoff: { type: 'exponential', delay: 1000, jitter: 0.5 },
  removeOnComplete: true,
  // A job that exhausts its attempts stays in the failed set: the dead-letter queue.
  removeOnFail: false,
} as const satisfies JobsOptions

/**
 * Every queue of the pipeline, its payload and its retry policy, in one place. Producers and
 * workers are typed from this, so a payload shape can only change here.
 */
export const queueCatalog = {
  /** Parent of each fan-out; completes once every store has the batch. */
  batches: {
    name: 'ingest-batches',
    jobName: 'batch',
    options: {
      // Kept so GET /api/v1/ingest/{id} can answer "stored": a day, but at most the newest 100,000,
      // so that Redis memory stays bounded under any load. Failures kept a week.
      removeOnComplete: { age: 24 * 3600, count: 100_000 },
      removeOnFail: { age: 7 * 24 * 3600 },
    },
  },
  storePostgres: { name: 'store-postgres', jobName: 'store', options: storeJobOptions },
  storeInflux: { name: 'store-influx', jobName: 'store', options: storeJobOptions },
} as const satisfies Record<string, { name: string; jobName: string; options: JobsOptions }>

export interface QueuePayloads {
  batches: BatchSummaryPayload
  storePostgres: StoreBatchPayload
  storeInflux: StoreBatchPayload
}

export type QueueKey = keyof typeof queueCatalog
export type StoreQueueKey = 'storePostgres' | 'storeInflux'

/** The store queues a batch fans out to, in a fixed order. */
export const storeQueues: readonly StoreQueueKey[] = ['storePostgres', 'storeInflux']

/** BullMQ key prefix: braces make every queue share one Redis Cluster hash slot, so a flow stays atomic. */
export const bullPrefix = (queuePrefix: string) => `{${queuePrefix}}`
