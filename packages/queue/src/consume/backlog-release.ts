import type { StoreBatchPayload } from '@iotflow/contracts'
import type { Logger } from '@iotflow/runtime'
import type { Job, Worker } from 'bullmq'
import { releaseBacklog } from '../backlog/backlog.js'
import { pointsOfStoreJob } from '../job-payloads.js'
import type { RedisConnection } from '../redis/connection.js'
import { failedForGood } from './failure-isolation.js'

export interface BacklogReleaser {
  /** Subtracts what was stored since the last flush, and reconciles. */
  flush(): Promise<void>
  /** Stops the timer and flushes once more. */
  close(): Promise<void>
}

/** Completed jobs' points are subtracted in one script call per this interval, not one per job. */
const RELEASE_INTERVAL_MS = 100
/** Even with nothing to subtract, the counter is reconciled this often. */
const RECONCILE_INTERVAL_MS = 1_000

/**
 * The writer's side of the backlog: every job the worker completes (after its batch committed) or
 * fails for good (it leaves for the dead-letter set) gives its points back. Points given back are
 * summed and subtracted every 100 ms; the same script reconciles the counter every second.
 */
export function releaseBacklogOnCompletion(
  worker: Worker<StoreBatchPayload>,
  options: {
    connection: RedisConnection
    queuePrefix: string
    logger: Pick<Logger, 'warn'>
  },
): BacklogReleaser {
  const { connection, queuePrefix, logger } = options
  const queueName = worker.name
  let pending = 0
  let lastRun = 0
  let running: Promise<void> | undefined

  // What each job counted when it was queued, read as the worker takes it: a job partly refused
  // is cut down to its refused batches before it fails (batching-worker.ts), yet gives all back.
  const counted = new WeakMap<Job<StoreBatchPayload>, number>()
  const pointsOf = (job: Job<StoreBatchPayload>) => counted.get(job) ?? pointsOfStoreJob(job)
  worker.on('active', (job: Job<StoreBatchPayload>) => {
    counted.set(job, pointsOfStoreJob(job))
  })
  worker.on('completed', (job: Job<StoreBatchPayload>) => {
    pending += pointsOf(job)
  })
  worker.on('failed', (job: Job<StoreBatchPayload> | undefined, error: Error) => {
    if (!job || error.name === 'RateLimitError') return
    if (failedForGood(job, error)) pending += pointsOf(job)
  })

  function flush(): Promise<void> {
    running ??= (async () => {
      const points = pending
      pending = 0
      lastRun = Date.now()
      try {
        await releaseBacklog(connection, queuePrefix, queueName, points)
      } catch (error) {
        pending += points // subtracted at the next flush instead
        logger.warn({ queue: queueName, err: (error as Error).message }, 'could not update the backlog')
      }
    })().finally(() => {
      running = undefined
    })
    return running
  }

  const timer = setInterval(() => {
    if (pending > 0 || Date.now() - lastRun >= RECONCILE_INTERVAL_MS) void flush()
  }, RELEASE_INTERVAL_MS)

  return {
    flush,
    async close() {
      clearInterval(timer)
      await running
      if (pending > 0) await flush()
    },
  }
}
