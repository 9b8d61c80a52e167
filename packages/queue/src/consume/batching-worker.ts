import { type DeviceColumns, pointsInPayload, type StoreBatchPayload } from '@iotflow/contracts'
import type { Logger } from '@iotflow/runtime'
import { withDeadline } from '@iotflow/runtime'
import { type Job, Queue, UnrecoverableError, Worker } from 'bullmq'
import { type BatchQueueKey, bullPrefix, type QueuePayloads, queueCatalog, storeQueues } from '../catalog.js'
import { processedPayloadOf } from '../job-payloads.js'
import type { RedisConnection } from '../redis/connection.js'
import { asError } from './as-error.js'
import { type BacklogReleaser, releaseBacklogOnCompletion } from './backlog-release.js'
import {
  type FailureKind,
  failedForGood,
  RefusedBatchesError,
  UnstoredBatchesError,
} from './failure-isolation.js'
import { createIsolatingGatherer } from './isolating-gatherer.js'

/**
 * How a failed write should be treated:
 * - `unavailable`: the store is down or unreachable; jobs go back to the queue without using an attempt
 *   and the worker pauses, so an outage of any length never exhausts retries.
 * - `permanent`: this payload can never succeed; fail at once into the dead-letter (failed) set.
 * - `transient`: anything else; retried with exponential backoff and jitter.
 */
export type { FailureKind }

export interface BatchingWorkerOptions<K extends BatchQueueKey> {
  queue: K
  connection: RedisConnection
  /**
   * The queue prefix of each partition consumed (partitionPrefix): one BullMQ worker per partition,
   * their jobs gathered into the same batches.
   */
  queuePrefixes: readonly string[]
  /** Jobs held at once over all partitions; they are gathered into batches. */
  concurrency: number
  maxBatchPoints: number
  lingerMs: number
  /** Batch writes running at once; jobs that arrive meanwhile gather into the next batch. */
  maxInFlightWrites: number
  /** Writes the device batches of many jobs at once; resolves once the store has committed them. */
  writeBatch: (batches: DeviceColumns[]) => Promise<void>
  classify: (error: Error) => FailureKind
  logger: Pick<Logger, 'info' | 'warn' | 'error'>
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
  /** One per partition consumed, in the order of `queuePrefixes`. */
  workers: Worker[]
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
  if (options.queuePrefixes.length === 0) throw new Error(`no queue partition to consume for ${name}`)
  // Only used for their rate limiter keys: pausing every worker of this queue, in every partition
  // this process consumes, while the store is down.
  const queues = options.queuePrefixes.map(
    (queuePrefix) => new Queue(name, { connection: options.connection, prefix: bullPrefix(queuePrefix) }),
  )
  let unavailablePauseMs = UNAVAILABLE_PAUSE_MIN_MS

  const gatherer = createIsolatingGatherer(name, options, () => {
    unavailablePauseMs = UNAVAILABLE_PAUSE_MIN_MS
  })

  // The jobs held at once are shared out over the partitions' workers (at least one each).
  const heldPoints = createHeldPointsBound(options, options.queuePrefixes.length)
  const concurrencyPerPartition = Math.max(1, Math.ceil(options.concurrency / options.queuePrefixes.length))
  const processor = async (job: Job<QueuePayloads[K]>) => {
    const payload: StoreBatchPayload = processedPayloadOf(options.queue, job)
    try {
      const points = pointsInPayload(payload)
      const concurrency = heldPoints.concurrencyAfter(points)
      for (const worker of workers) worker.concurrency = concurrency
      // Job ids are per queue, and the partitions' queues share the gatherer: qualified, so that a
      // failure of one job is never taken for another partition's job of the same id.
      await gatherer.add({ id: `${job.queueQualifiedName}:${job.id}`, points, value: payload })
      return { stored: points }
    } catch (error) {
      if (error instanceof HandedBackError) throw Worker.RateLimitError()
      if (error instanceof RefusedBatchesError) {
        // The rest of the job is stored: only the refused device batches stay in the dead-letter set.
        if (error.refused.length < payload.batches.length)
          await job.updateData({ ...payload, batches: error.refused })
        throw new UnrecoverableError(error.message)
      }
      if (error instanceof UnstoredBatchesError) {
        // A transient failure: retried (with backoff) with the device batches that were not stored.
        if (error.unstored.length < payload.batches.length)
          await job.updateData({ ...payload, batches: error.unstored })
        throw error.cause
      }
      const failure = asError(error)
      const kind = options.classify(failure)
      if (kind === 'unavailable') {
        await Promise.all(queues.map((queue) => queue.rateLimit(unavailablePauseMs)))
        unavailablePauseMs = Math.min(unavailablePauseMs * 2, UNAVAILABLE_PAUSE_MAX_MS)
        options.logger.warn({ queue: name, err: failure.message }, 'store unavailable; pausing this queue')
        throw Worker.RateLimitError()
      }
      if (kind === 'permanent') throw new UnrecoverableError(failure.message)
      throw failure
    }
  }

  // Only the store queues count in the backlog; the alert evaluator's does not (catalog.ts).
  const countsInBacklog = (storeQueues as readonly BatchQueueKey[]).includes(options.queue)
  const backlogs: BacklogReleaser[] = []
  const workers = options.queuePrefixes.map((queuePrefix) => {
    const worker = new Worker<QueuePayloads[K]>(name, processor, {
      connection: options.connection,
      prefix: bullPrefix(queuePrefix),
      concurrency: concurrencyPerPartition,
      // Manual rate limiting (above) only takes effect when a limiter is set; this one never limits.
      limiter: { max: 1_000_000, duration: 1000 },
      maxStalledCount: MAX_STALLED_COUNT,
      lockDuration: options.lockDurationMs,
      stalledInterval: options.stalledIntervalMs,
    })
    const where = { queue: name, prefix: queuePrefix }
    worker.on('error', (error) => options.logger.error({ ...where, err: error.message }, 'worker error'))
    // A job whose lock lapsed: its writer died, or (never expected) missed its renewals for a whole
    // lock duration. Queued again and written again, harmlessly: every write is idempotent.
    worker.on('stalled', (jobId) =>
      options.logger.warn({ ...where, job: jobId }, 'job stalled (its lock lapsed); queued again'),
    )
    if (countsInBacklog) backlogs.push(releaseBacklogOnCompletion(worker, { ...options, queuePrefix }))
    worker.on('failed', (job, error) => {
      if (!job || error.name === 'RateLimitError') return
      const final = failedForGood(job, error)
      options.logger[final ? 'error' : 'warn'](
        { ...where, job: job.id, batch: job.data.batch_id, attempt: job.attemptsMade, err: error.message },
        final ? 'job failed for good; kept in the dead-letter set' : 'job failed; will retry',
      )
    })
    return worker
  })

  let closing: Promise<void> | undefined
  return {
    workers,
    close() {
      // Stop taking jobs; write what we hold for a while, then hand the unwritten rest back to the
      // queue (another worker takes it at once); writes already running finish.
      closing ??= (async () => {
        const closed = Promise.all(workers.map((worker) => worker.close()))
        const drained = await withDeadline(gatherer.drain(), options.shutdownDrainMs, 'shutdown drain').then(
          () => true,
          () => false,
        )
        if (!drained) {
          const handedBack = gatherer.handBack(new HandedBackError('writer shutting down'))
          options.logger.warn({ queue: name, jobs: handedBack }, 'shutdown: handed unwritten jobs back')
        }
        await closed
        await Promise.all(backlogs.map((backlog) => backlog.close()))
        await Promise.all(queues.map((queue) => queue.close()))
      })()
      return closing
    },
  }
}

/**
 * How many jobs each of `workers` partitions' workers holds at once so that about enough points for
 * the writes in flight plus the one gathering are held in all (`maxBatchPoints` × (`maxInFlightWrites`
 * + 1)), whatever the job size: many when jobs are small (group commits of a few single-point
 * requests), few when they are large, so a writer's memory follows points, not jobs. Never more than
 * `concurrency` in all, never less than one per worker.
 */
function createHeldPointsBound(
  options: Pick<BatchingWorkerOptions<BatchQueueKey>, 'concurrency' | 'maxBatchPoints' | 'maxInFlightWrites'>,
  workers: number,
) {
  const target = options.maxBatchPoints * (options.maxInFlightWrites + 1)
  let averagePoints: number | undefined
  return {
    concurrencyAfter(jobPoints: number): number {
      averagePoints = averagePoints === undefined ? jobPoints : averagePoints * 0.9 + jobPoints * 0.1
      const total = Math.min(options.concurrency, Math.ceil(target / averagePoints))
      return Math.max(1, Math.ceil(total / workers))
    },
  }
}
