import { pointsInPayload, type QueuedDeviceBatch } from '@iotflow/contracts'
import { withDeadline } from '@iotflow/runtime'
import { type Job, Queue, UnrecoverableError, Worker } from 'bullmq'
import { asError } from './as-error.js'
import { releaseBacklogOnCompletion } from './backlog.js'
import { withBatchWriteSpan } from './batch-write-span.js'
import { type BatchQueueKey, bullPrefix, type QueuePayloads, queueCatalog, storeQueues } from './catalog.js'
import type { RedisConnection } from './connection.js'
import {
  type FailureKind,
  failedForGood,
  RefusedBatchesError,
  UnstoredBatchesError,
  writeIsolatingFailures,
} from './failure-isolation.js'
import { JobGatherer } from './job-gatherer.js'

/**
 * How a failed write should be treated:
 * - `unavailable`: the store is down or unreachable; jobs go back to the queue without using an attempt
 *   and the worker pauses, so an outage of any length never exhausts retries.
 * - `permanent`: this payload can never succeed; fail at once into the dead-letter (failed) set.
 * - `transient`: anything else; retried with exponential backoff and jitter.
 */
export type { FailureKind }

export interface Logger {
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

export interface BatchingWorkerOptions<K extends BatchQueueKey> {
  queue: K
  connection: RedisConnection
  queuePrefix: string
  /** Jobs held at once; they are gathered into batches. */
  concurrency: number
  maxBatchPoints: number
  lingerMs: number
  /** Batch writes running at once; jobs that arrive meanwhile gather into the next batch. */
  maxInFlightWrites: number
  /** Writes the device batches of many jobs at once; resolves once the store has committed them. */
  writeBatch: (batches: QueuedDeviceBatch[]) => Promise<void>
  classify: (error: Error) => FailureKind
  logger: Logger
  /** On close, how long jobs already taken may still be written before the rest are handed back. */
  shutdownDrainMs: number
  /**
   * A held job's lock lasts this long unless renewed (BullMQ renews every job's lock once a quarter
   * to a half of it has passed): once a killed writer's locks lapse, its jobs are free again.
   */
  lockDurationMs: number
  /** How often jobs whose lock lapsed are found and queued again (each check on one writer only). */
  stalledIntervalMs: number
}

export interface BatchingWorker {
  worker: Worker
  close(): Promise<void>
}

const UNAVAILABLE_PAUSE_MIN_MS = 500
const UNAVAILABLE_PAUSE_MAX_MS = 15_000
// A job whose worker died is handed to another (stalled-job recovery) up to this many times before
// it is failed; every write is idempotent, so each repeat is harmless.
const MAX_STALLED_COUNT = 5

/** A job given back to the queue at shutdown, unwritten: it goes back to `wait` without using an attempt. */
class HandedBackError extends Error {
  override name = 'HandedBackError'
}

export function createBatchingWorker<K extends BatchQueueKey>(
  options: BatchingWorkerOptions<K>,
): BatchingWorker {
  const { name } = queueCatalog[options.queue]
  const prefix = bullPrefix(options.queuePrefix)
  // Only used for its rate limiter key: pausing every worker of this queue while the store is down.
  const queue = new Queue(name, { connection: options.connection, prefix })
  let unavailablePauseMs = UNAVAILABLE_PAUSE_MIN_MS

  const gatherer = new JobGatherer<QueuePayloads[K]>(
    async (items) => {
      const failures = await withBatchWriteSpan(
        name,
        items.map((item) => item.value),
        () => writeIsolatingFailures(items, options.writeBatch, options.classify),
      )
      unavailablePauseMs = UNAVAILABLE_PAUSE_MIN_MS
      return failures
    },
    { maxPoints: options.maxBatchPoints, lingerMs: options.lingerMs, maxInFlight: options.maxInFlightWrites },
  )

  const heldPoints = createHeldPointsBound(options)
  const processor = async (job: Job<QueuePayloads[K]>) => {
    try {
      const points = pointsInPayload(job.data)
      worker.concurrency = heldPoints.concurrencyAfter(points)
      await gatherer.add({ id: job.id as string, points, value: job.data })
      return { stored: points }
    } catch (error) {
      if (error instanceof HandedBackError) throw Worker.RateLimitError()
      if (error instanceof RefusedBatchesError) {
        // The rest of the job is stored: only the refused device batches stay in the dead-letter set.
        if (error.refused.length < job.data.batches.length)
          await job.updateData({ ...job.data, batches: error.refused })
        throw new UnrecoverableError(error.message)
      }
      if (error instanceof UnstoredBatchesError) {
        // A transient failure: retried (with backoff) with the device batches that were not stored.
        if (error.unstored.length < job.data.batches.length)
          await job.updateData({ ...job.data, batches: error.unstored })
        throw error.cause
      }
      const failure = asError(error)
      const kind = options.classify(failure)
      if (kind === 'unavailable') {
        await queue.rateLimit(unavailablePauseMs)
        unavailablePauseMs = Math.min(unavailablePauseMs * 2, UNAVAILABLE_PAUSE_MAX_MS)
        options.logger.warn({ queue: name, err: failure.message }, 'store unavailable; pausing this queue')
        throw Worker.RateLimitError()
      }
      if (kind === 'permanent') throw new UnrecoverableError(failure.message)
      throw failure
    }
  }

  const worker = new Worker<QueuePayloads[K]>(name, processor, {
    connection: options.connection,
    prefix,
    concurrency: options.concurrency,
    // Manual rate limiting (above) only takes effect when a limiter is set; this one never limits.
    limiter: { max: 1_000_000, duration: 1000 },
    maxStalledCount: MAX_STALLED_COUNT,
    lockDuration: options.lockDurationMs,
    stalledInterval: options.stalledIntervalMs,
  })
  worker.on('error', (error) => options.logger.error({ queue: name, err: error.message }, 'worker error'))
  // A job whose lock lapsed: its writer died, or (never expected) missed its renewals for a whole
  // lock duration. Queued again and written again, harmlessly: every write is idempotent.
  worker.on('stalled', (jobId) =>
    options.logger.warn({ queue: name, job: jobId }, 'job stalled (its lock lapsed); queued again'),
  )
  // Only the store queues count in the backlog; the alert evaluator's does not (catalog.ts).
  const countsInBacklog = (storeQueues as readonly BatchQueueKey[]).includes(options.queue)
  const backlog = countsInBacklog ? releaseBacklogOnCompletion(worker, options) : undefined
  worker.on('failed', (job, error) => {
    if (!job || error.name === 'RateLimitError') return
    const final = failedForGood(job, error)
    options.logger[final ? 'error' : 'warn'](
      { queue: name, job: job.id, batch: job.data.batch_id, attempt: job.attemptsMade, err: error.message },
      final ? 'job failed for good; kept in the dead-letter set' : 'job failed; will retry',
    )
  })

  let closing: Promise<void> | undefined
  return {
    worker,
    close() {
      // Stop taking jobs; write what we hold for a while, then hand the unwritten rest back to the
      // queue (another worker takes it at once); writes already running finish.
      closing ??= (async () => {
        const closed = worker.close()
        const drained = await withDeadline(gatherer.drain(), options.shutdownDrainMs, 'shutdown drain').then(
          () => true,
          () => false,
        )
        if (!drained) {
          const handedBack = gatherer.handBack(new HandedBackError('writer shutting down'))
          options.logger.warn({ queue: name, jobs: handedBack }, 'shutdown: handed unwritten jobs back')
        }
        await closed
        await backlog?.close()
        await queue.close()
      })()
      return closing
    },
  }
}

/**
 * How many jobs to hold at once so that about enough points for the writes in flight plus the one
 * gathering are held (`maxBatchPoints` × (`maxInFlightWrites` + 1)), whatever the job size: many
 * when jobs are small (group commits of a few single-point requests), few when they are large, so a
 * writer's memory follows points, not jobs. Never more than `concurrency`.
 */
function createHeldPointsBound(
  options: Pick<BatchingWorkerOptions<BatchQueueKey>, 'concurrency' | 'maxBatchPoints' | 'maxInFlightWrites'>,
) {
  const target = options.maxBatchPoints * (options.maxInFlightWrites + 1)
  let averagePoints: number | undefined
  return {
    concurrencyAfter(jobPoints: number): number {
      averagePoints = averagePoints === undefined ? jobPoints : averagePoints * 0.9 + jobPoints * 0.1
      return Math.max(1, Math.min(options.concurrency, Math.ceil(target / averagePoints)))
    },
  }
}
