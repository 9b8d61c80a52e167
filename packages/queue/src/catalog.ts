import { AlertDeliveryPayload, BatchSummaryPayload, StoreBatchPayload } from '@iotflow/contracts'
import type { Static, TSchema } from '@sinclair/typebox'
import type { JobsOptions } from 'bullmq'

/**
 * Store jobs retry with exponential backoff and jitter: 1 s, 2 s, 4 s … up to 1,024 s before the
 * twelfth attempt (17 to 34 min in all, with the jitter). An app's config may change the two numbers
 * (`storeJobOptionsWith`); the shape of the policy is this one.
 */
const storeJobOptions = {
  attempts: 12,
  backoff: { type: 'exponential', delay: 1000, jitter: 0.5 },
  removeOnComplete: true,
  // A job that exhausts its attempts stays in the failed set: the dead-letter queue.
  removeOnFail: false,
} as const satisfies JobsOptions

/** The numbers of the store jobs' retry policy a producer's config may override (unset: the catalog's). */
export interface StoreRetryOverrides {
  /** Attempts before a transiently failing job stays in the dead-letter set. */
  attempts?: number | undefined
  /** Delay before the first retry; doubled for each further one (then jittered). */
  backoffMs?: number | undefined
}

/**
 * Every queue of the pipeline, its payload's schema and its retry policy, in one place. Producers
 * and workers are typed from the schemas, and a consumer checks each job against its queue's
 * (job-payloads.ts), so a payload shape can only change here.
 */
export const queueCatalog = {
  /** Parent of each fan-out; completes once every store has the batch. */
  batches: {
    name: 'ingest-batches',
    jobName: 'batch',
    payload: BatchSummaryPayload,
    options: {
      // Kept so GET /api/v1/ingest/{id} can answer "stored": a day, but at most the newest 100,000,
      // so that Redis memory stays bounded under any load. Failures kept a week.
      removeOnComplete: { age: 24 * 3600, count: 100_000 },
      removeOnFail: { age: 7 * 24 * 3600 },
    },
  },
  storePostgres: {
    name: 'store-postgres',
    jobName: 'store',
    payload: StoreBatchPayload,
    options: storeJobOptions,
  },
  storeInflux: {
    name: 'store-influx',
    jobName: 'store',
    payload: StoreBatchPayload,
    options: storeJobOptions,
  },
  /**
   * The alert evaluator's queue before the alert streams (alert-stream-keys.ts): no longer queued to,
   * but drained by the evaluator at start (legacy-alert-queue.ts) and its failed jobs replayed into
   * the stream. Its name names the streams' depths, and its retry policy is the entries'.
   */
  alertEvaluate: {
    name: 'alert-evaluate',
    jobName: 'evaluate',
    payload: StoreBatchPayload,
    options: storeJobOptions,
  },
  /**
   * One notification to Alertmanager. Its job id is the transition's, kept a day after delivery,
   * so queueing the same transition twice delivers it once.
   */
  alertDeliver: {
    name: 'alert-deliver',
    jobName: 'deliver',
    payload: AlertDeliveryPayload,
    options: {
      attempts: 15,
      backoff: { type: 'exponential', delay: 1000, jitter: 0.5 },
      removeOnComplete: { age: 24 * 3600, count: 100_000 },
      removeOnFail: false,
    },
  },
} as const satisfies Record<string, { name: string; jobName: string; payload: TSchema; options: JobsOptions }>

export type QueueKey = keyof typeof queueCatalog

/** Each queue's job data, as its schema says. */
export type QueuePayloads = { [K in QueueKey]: Static<(typeof queueCatalog)[K]['payload']> }
export type StoreQueueKey = 'storePostgres' | 'storeInflux'
/** The queues whose jobs carry device batches, consumed by a batching worker. */
export type BatchQueueKey = StoreQueueKey | 'alertEvaluate'

/** The options of a store job: the catalog's policy, with the numbers an app's config overrides. */
export function storeJobOptionsWith(key: StoreQueueKey, overrides: StoreRetryOverrides = {}): JobsOptions {
  const { options } = queueCatalog[key]
  return {
    ...options,
    attempts: overrides.attempts ?? options.attempts,
    backoff: { ...options.backoff, delay: overrides.backoffMs ?? options.backoff.delay },
  }
}

/** The store queues a batch fans out to, in a fixed order. */
export const storeQueues: readonly StoreQueueKey[] = ['storePostgres', 'storeInflux']

/** BullMQ key prefix: braces make every queue share one Redis Cluster hash slot, so a flow stays atomic. */
export const bullPrefix = (queuePrefix: string) => `{${queuePrefix}}`
