import { type AlertDeliveryPayload, pointsInPayload } from '@iotflow/contracts'
import { type Job, Queue } from 'bullmq'
import { backlogKey } from './backlog.js'
import { bullPrefix, queueCatalog, type StoreQueueKey, storeQueues } from './catalog.js'
import type { RedisConnection } from './connection.js'

/** The queues with a dead-letter set: the stores', the alert evaluator's and the alert deliveries'. */
export type DeadLetterQueueKey = StoreQueueKey | 'alertEvaluate' | 'alertDeliver'
export const deadLetterQueues: readonly DeadLetterQueueKey[] = [
  ...storeQueues,
  'alertEvaluate',
  'alertDeliver',
]

/** A job that failed for good: it stays in its queue's failed set until replayed. */
export interface DeadLetter {
  queue: string
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
}

export interface ReplayReport {
  replayed: { queue: string; jobId: string }[]
  /** Job ids asked for that are not in a failed set (already replayed, removed, or never failed). */
  notFound: string[]
}

const PAGE = 500

/**
 * The dead-letter queue: each store queue's failed set. Jobs land there with their error after their
 * last attempt (or at once when the store refuses the payload for good). Replaying moves a job back
 * to `wait` with its attempts reset, so it gets its full retry budget again; the writes are
 * idempotent, so replaying a job whose data was in fact stored changes nothing.
 */
export function createDeadLetters(connection: RedisConnection, queuePrefix: string) {
  const queues = new Map(
    deadLetterQueues.map((key) => [
      key,
      new Queue(queueCatalog[key].name, { connection, prefix: bullPrefix(queuePrefix) }),
    ]),
  )
  const selected = (keys: readonly DeadLetterQueueKey[] = deadLetterQueues) =>
    keys.map((key) => [key, queues.get(key) as Queue] as const)

  async function* failedJobs(queue: Queue): AsyncGenerator<Job> {
    // Oldest first, so failures arriving meanwhile only append; callers collect before replaying.
    for (let start = 0; ; start += PAGE) {
      const page = await queue.getJobs(['failed'], start, start + PAGE - 1, true)
      if (page.length === 0) return
      for (const job of page) if (job) yield job
    }
  }

  return {
    async list(keys?: readonly DeadLetterQueueKey[]): Promise<DeadLetter[]> {
      const letters: DeadLetter[] = []
      for (const [, queue] of selected(keys)) {
        for await (const job of failedJobs(queue)) letters.push(toDeadLetter(queue.name, job))
      }
      return letters
    },

    async replay(request: ReplayRequest = {}): Promise<ReplayReport> {
      const report: ReplayReport = { replayed: [], notFound: [] }
      for (const [key, queue] of selected(request.queues)) {
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
            await connection.hincrby(backlogKey(queuePrefix), queue.name, pointsInPayload(job.data))
          await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true })
          report.replayed.push({ queue: queue.name, jobId: job.id as string })
        }
      }
      const found = new Set(report.replayed.map((r) => r.jobId))
      report.notFound = (request.jobIds ?? []).filter((id) => !found.has(id))
      return report
    },

    close: () => Promise.all([...queues.values()].map((q) => q.close())).then(() => undefined),
  }
}

export type DeadLetters = ReturnType<typeof createDeadLetters>

function toDeadLetter(queue: string, job: Job): DeadLetter {
  if (queue === queueCatalog.alertDeliver.name) return alertDeliveryLetter(queue, job)
  return {
    queue,
    jobId: job.id as string,
    batchId: job.data?.batch_id,
    deviceIds: (job.data?.batches ?? []).map((b: { device_id: number }) => b.device_id),
    points: job.data?.batches ? pointsInPayload(job.data) : 0,
    failedReason: job.failedReason,
    attemptsMade: job.attemptsMade,
    failedAt: job.finishedOn,
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
        : data.alerts.map((alert) => Number(alert.labels.device_id))
  return {
    queue,
    jobId: job.id as string,
    batchId: data.target === 'webhook' ? `webhook of rule ${data.rule_id}` : (data.target ?? 'alertmanager'),
    deviceIds,
    points: 0,
    failedReason: job.failedReason,
    attemptsMade: job.attemptsMade,
    failedAt: job.finishedOn,
  }
}
