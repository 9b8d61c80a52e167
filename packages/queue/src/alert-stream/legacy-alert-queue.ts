import { setTimeout as sleep } from 'node:timers/promises'
import { Queue } from 'bullmq'
import { bullPrefix, queueCatalog } from '../catalog.js'
import { type BatchingWorkerOptions, createBatchingWorker } from '../consume/batching-worker.js'
import { onSharedConnection } from '../redis/connection.js'

/** What the legacy drain needs: a batching worker's options, on the alert-evaluate queue. */
export type LegacyAlertQueueOptions = Omit<BatchingWorkerOptions<'alertEvaluate'>, 'queue'>

/** The states of a job not yet judged (failed jobs are dead letters: dead-letters.ts replays them). */
const UNJUDGED = ['waiting', 'active', 'delayed', 'prioritized', 'paused'] as const

/**
 * The BullMQ `alert-evaluate` queue of the releases before the alert stream. Jobs left in it at an
 * upgrade (or queued by a producer not yet upgraded) are judged as before, by a batching worker on
 * it, until it is empty; then the worker stops. Jobs waiting for a retry are promoted first, so the
 * drain does not wait out their backoff. Resolves with the number of jobs found unjudged; stops
 * early (its worker handing back what it holds) once `stopped` says so.
 */
export async function drainLegacyAlertQueue(
  options: LegacyAlertQueueOptions,
  stopped: () => boolean = () => false,
  pollMs = 250,
): Promise<number> {
  const { name } = queueCatalog.alertEvaluate
  const queues = options.queuePrefixes.map(
    (queuePrefix) =>
      new Queue(name, {
        connection: options.connection,
        prefix: bullPrefix(queuePrefix),
        ...onSharedConnection,
      }),
  )
  const unjudged = async () => {
    const counts = await Promise.all(queues.map((queue) => queue.getJobCounts(...UNJUDGED)))
    return counts.reduce((sum, byState) => sum + Object.values(byState).reduce((a, b) => a + b, 0), 0)
  }
  try {
    const found = await unjudged()
    if (found === 0) return 0
    options.logger.warn(
      { queue: name, jobs: found },
      'judging the jobs left in the legacy alert-evaluate queue',
    )
    await Promise.all(queues.map((queue) => queue.promoteJobs()))
    const worker = createBatchingWorker({ ...options, queue: 'alertEvaluate' })
    try {
      while (!stopped() && (await unjudged()) > 0) await sleep(pollMs)
    } finally {
      await worker.close()
    }
    options.logger.info({ queue: name, jobs: found }, 'the legacy alert-evaluate queue is drained')
    return found
  } finally {
    await Promise.all(queues.map((queue) => queue.close()))
  }
}
