import type { StoreBatchPayload } from '@iotflow/contracts'
import { Job, Queue } from 'bullmq'
import { bullPrefix, queueCatalog, storeQueues } from '../catalog.js'
import { pointsOfStoreJob } from '../job-payloads.js'
import { onSharedConnection, type RedisConnection } from '../redis/connection.js'

/** The states of a store job whose points are not stored yet; `failed` is a dead letter. */
const UNSTORED_STATES = ['wait', 'paused', 'active', 'delayed', 'prioritized', 'failed'] as const

/**
 * Which acknowledged points are not stored yet, job by job, in each store queue: what a backup
 * needs to say what it holds (it holds the writers with writer-hold.ts). A store job is removed once
 * its batch is committed (or kept as completed), so a job that is gone was stored; one in the
 * failed set was not (it waits for a replay).
 */
export function createUnstoredJobs(connection: RedisConnection, queuePrefix: string) {
  const queues = new Map(
    storeQueues.map((key) => {
      const name = queueCatalog[key].name
      return [
        name as string,
        new Queue<StoreBatchPayload>(name, {
          connection,
          prefix: bullPrefix(queuePrefix),
          ...onSharedConnection,
        }),
      ]
    }),
  )
  const queueNamed = (name: string) => {
    const queue = queues.get(name)
    if (!queue) throw new Error(`not a store queue: ${name}`)
    return queue
  }
  return {
    /** Every store queue's unstored job ids now (one script per queue, so no job is missed moving). */
    async ids(): Promise<Record<string, string[]>> {
      const entries = await Promise.all(
        [...queues].map(async ([name, queue]) => [name, await queue.getRanges([...UNSTORED_STATES], 0, -1)]),
      )
      return Object.fromEntries(entries)
    },

    /** Of `ids`, those still unstored, with their state (`failed`: a dead letter, waiting for a replay). */
    async stillUnstored(queueName: string, ids: readonly string[]): Promise<Map<string, string>> {
      const queue = queueNamed(queueName)
      const states = await Promise.all(ids.map((id) => queue.getJobState(id)))
      const unstored = new Map<string, string>()
      ids.forEach((id, i) => {
        const state = states[i] as string
        if (state !== 'completed' && state !== 'unknown') unstored.set(id, state)
      })
      return unstored
    },

    /** The points the jobs `ids` carry (a job gone since counts none: it was stored). */
    async pointsOf(queueName: string, ids: readonly string[]): Promise<number> {
      const queue = queueNamed(queueName)
      const jobs = await Promise.all(ids.map((id) => Job.fromId<StoreBatchPayload>(queue, id)))
      return jobs.reduce((sum, job) => sum + (job ? pointsOfStoreJob(job) : 0), 0)
    },

    /** Writers connected to each store queue (BullMQ's CLIENT LIST of its workers). */
    async writersConnected(): Promise<Record<string, number>> {
      const entries = await Promise.all(
        [...queues].map(async ([name, queue]) => [name, await queue.getWorkersCount()] as const),
      )
      return Object.fromEntries(entries)
    },

    close: () => Promise.all([...queues.values()].map((q) => q.close())).then(() => undefined),
  }
}

export type UnstoredJobs = ReturnType<typeof createUnstoredJobs>
