import type { AlertDeliveryPayload } from '@iotflow/contracts'
import { type Job, Queue } from 'bullmq'
import {
  type AlertDeadLetterEntry,
  listAlertDeadLetters,
  replayAlertDeadLetters,
} from '../alert-stream/alert-dead-letters.js'
import { ALERT_ENTRY_DATA, alertStreamKey } from '../alert-stream/alert-stream-keys.js'
import { backlogKey } from '../backlog/backlog.js'
import { bullPrefix, queueCatalog, type StoreQueueKey, storeQueues } from '../catalog.js'
import { pointsOfStoreJob } from '../job-payloads.js'
import { allPartitions, partitionPrefix, type QueueLayout } from '../partitions.js'
import type { RedisConnection } from '../redis/connection.js'

/**
 * The queues with a dead-letter set: the stores', the alert evaluator's and the alert deliveries'.
 * The alert evaluator's are the dead letters of its alert streams (alert-dead-letters.ts) and the
 * failed jobs its BullMQ queue kept from before the streams; both are replayed into the stream.
 */
export type DeadLetterQueueKey = StoreQueueKey | 'alertEvaluate' | 'alertDeliver'
export const deadLetterQueues: readonly DeadLetterQueueKey[] = [
  ...storeQueues,
  'alertEvaluate',
  'alertDeliver',
]

/** A job that failed for good: it stays in its queue's failed set until replayed. */
export interface DeadLetter {
  queue: string
  /** The queue partition of a device-batch queue; undefined for alert-deliver (not partitioned). */
  partition: number | undefined
  /** The job's id; for an alert-stream dead letter, its id in the dead-letter stream (`<ms>-<n>`). */
  jobId: string
  /** The batch of a store or alert-evaluate job; what an alert-deliver job delivers, and where. */
  batchId: string
  deviceIds: number[]
  points: number
  failedReason: string
  attemptsMade: number
  failedAt: number | undefined
}

export interface ReplayRequest {
  /** Queues to look in (by catalog key); all of them when omitted. */
  queues?: readonly DeadLetterQueueKey[]
  /** Only these job ids; every dead letter of the queues when omitted. */
  jobIds?: readonly string[]
  /**
   * Only in these queue partitions (a job id is one partition's: the same id may name another job
   * in another); every partition when omitted. alert-deliver is in none and always looked in.
   */
  partitions?: readonly number[]
}

export interface ReplayReport {
  replayed: { queue: string; partition: number | undefined; jobId: string }[]
  /** Job ids asked for that are not in a failed set (already replayed, removed, or never failed). */
  notFound: string[]
}

const PAGE = 500

/**
 * The dead-letter queue: each store queue's failed set. Jobs land there with their error after their
 * last attempt (or at once when the store refuses the payload for good). Replaying moves a job back
 * to `wait` with its attempts reset, so it gets its full retry budget again; the writes are
 * idempotent, so replaying a job whose data was in fact stored changes nothing. The alert
 * evaluator's dead letters go back into its alert stream as new entries (a legacy failed job: its
 * data added to the stream, then the job removed; judging a batch twice changes nothing).
 */
export function createDeadLetters(connection: RedisConnection, layout: QueueLayout) {
  // Each device-batch queue once per partition; alert-deliver once, under the base prefix.
  const queueIn = (key: DeadLetterQueueKey, partition: number | undefined, queuePrefix: string) => ({
    key,
    partition,
    queuePrefix,
    queue: new Queue(queueCatalog[key].name, { connection, prefix: bullPrefix(queuePrefix) }),
  })
  const queues = deadLetterQueues.flatMap((key) =>
    key === 'alertDeliver'
      ? [queueIn(key, undefined, layout.prefix)]
      : allPartitions(layout).map((partition) => queueIn(key, partition, partitionPrefix(layout, partition))),
  )
  const selected = (keys: readonly DeadLetterQueueKey[] = deadLetterQueues, partitions?: readonly number[]) =>
    queues.filter(
      (entry) =>
        keys.includes(entry.key) &&
        (partitions === undefined || entry.partition === undefined || partitions.includes(entry.partition)),
    )

  const alertPartitionsOf = (
    keys: readonly DeadLetterQueueKey[] = deadLetterQueues,
    partitions?: readonly number[],
  ) =>
    keys.includes('alertEvaluate')
      ? allPartitions(layout).filter(
          (partition) => partitions === undefined || partitions.includes(partition),
        )
      : []

  async function* failedJobs(queue: Queue): AsyncGenerator<Job> {
    // Oldest first, so failures arriving meanwhile only append; callers collect before replaying.
    for (let start = 0; ; start += PAGE) {
      const page = await queue.getJobs(['failed'], start, start + PAGE - 1, true)
      if (page.length === 0) return
      for (const job of page) if (job) yield job
    }
  }

  return {
    async list(keys?: readonly DeadLetterQueueKey[], partitions?: readonly number[]): Promise<DeadLetter[]> {
      const letters: DeadLetter[] = []
      for (const { queue, partition } of selected(keys, partitions)) {
        for await (const job of failedJobs(queue)) letters.push(toDeadLetter(queue.name, partition, job))
      }
      for (const partition of alertPartitionsOf(keys, partitions)) {
        for (const letter of await listAlertDeadLetters(connection, partitionPrefix(layout, partition)))
          letters.push(alertStreamLetter(partition, letter))
      }
      return letters
    },

    async replay(request: ReplayRequest = {}): Promise<ReplayReport> {
      const report: ReplayReport = { replayed: [], notFound: [] }
      for (const { key, partition, queuePrefix, queue } of selected(request.queues, request.partitions)) {
        const jobs: Job[] = []
        if (request.jobIds) {
          for (const id of request.jobIds) {
            const job = await queue.getJob(id)
            if (job && (await job.isFailed())) jobs.push(job)
          }
        } else {
          for await (const job of failedJobs(queue)) jobs.push(job)
        }
        for (const job of jobs) {
          // Back in its queue, a store job counts in the backlog again: counted first, so that a
          // writer taking it at once cannot give its points back before they were added. The
          // alert queues are not in the backlog.
          if (key === 'storePostgres' || key === 'storeInflux')
            await connection.hincrby(backlogKey(queuePrefix), queue.name, pointsOfStoreJob(job))
          if (key === 'alertEvaluate') {
            // The queue is no longer consumed: its batch goes to the stream the evaluators read.
            await connection.xadd(
              alertStreamKey(queuePrefix),
              '*',
              ALERT_ENTRY_DATA,
              JSON.stringify(job.data),
            )
            await job.remove()
          } else await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true })
          report.replayed.push({ queue: queue.name, partition, jobId: job.id as string })
        }
      }
      for (const partition of alertPartitionsOf(request.queues, request.partitions)) {
        const replayed = await replayAlertDeadLetters(
          connection,
          partitionPrefix(layout, partition),
          request.jobIds,
        )
        for (const jobId of replayed)
          report.replayed.push({ queue: queueCatalog.alertEvaluate.name, partition, jobId })
      }
      const found = new Set(report.replayed.map((r) => r.jobId))
      report.notFound = (request.jobIds ?? []).filter((id) => !found.has(id))
      return report
    },

    close: () => Promise.all(queues.map(({ queue }) => queue.close())).then(() => undefined),
  }
}

export type DeadLetters = ReturnType<typeof createDeadLetters>

function toDeadLetter(queue: string, partition: number | undefined, job: Job): DeadLetter {
  if (queue === queueCatalog.alertDeliver.name) return alertDeliveryLetter(queue, job)
  return {
    queue,
    partition,
    jobId: job.id as string,
    ...batchOf(job.data),
    failedReason: job.failedReason,
    attemptsMade: job.attemptsMade,
    failedAt: job.finishedOn,
  }
}

/** The batch, devices and points of a device-batch payload, as far as it can be read. */
function batchOf(data: { batch_id?: string; batches?: { device_id: number }[] } | undefined) {
  const batches = data?.batches
  return {
    batchId: data?.batch_id ?? '',
    deviceIds: Array.isArray(batches) ? batches.map((b) => b.device_id) : [],
    points: pointsOfStoreJob({ data }),
  }
}

/** A dead letter of a partition's alert stream. */
function alertStreamLetter(partition: number, letter: AlertDeadLetterEntry): DeadLetter {
  let data: Parameters<typeof batchOf>[0]
  try {
    data = JSON.parse(letter.data)
  } catch {
    data = undefined // an entry no one could read: kept as it came
  }
  return {
    queue: queueCatalog.alertEvaluate.name,
    partition,
    jobId: letter.id,
    ...batchOf(data),
    failedReason: letter.reason,
    attemptsMade: letter.attemptsMade,
    failedAt: letter.failedAt,
  }
}

/** A notification that failed for good: which transition (its job id), to which receiver, of which devices. */
function alertDeliveryLetter(queue: string, job: Job<AlertDeliveryPayload>): DeadLetter {
  const { data } = job
  const deviceIds =
    data.target === 'webhook'
      ? [(JSON.parse(data.body) as { device_id: number }).device_id]
      : data.target === 'mqtt'
        ? []
        : data.target === 'alertmanager-current'
          ? data.keys.map((key) => key.device_id)
          : data.alerts.map((alert) => Number(alert.labels.device_id))
  return {
    queue,
    partition: undefined,
    jobId: job.id as string,
    batchId:
      data.target === 'webhook'
        ? `webhook of rule ${data.rule_id}`
        : data.target === 'mqtt'
          ? 'mqtt'
          : 'alertmanager',
    deviceIds,
    points: 0,
    failedReason: job.failedReason,
    attemptsMade: job.attemptsMade,
    failedAt: job.finishedOn,
  }
}
