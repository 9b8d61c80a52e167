import type { StoreBatchPayload } from '@iotflow/contracts'
import { Job, Queue } from 'bullmq'
import { bullPrefix, queueCatalog, storeQueues } from '../catalog.js'
import { pointsOfStoreJob } from '../job-payloads.js'
import { onSharedConnection, type RedisConnection } from '../redis/connection.js'

/** The states of a store job whose points are not stored yet; `failed` is a dead letter. */
const UNSTORED_STATES = ['wait', 'paused', 'active', 'delayed', 'prioritized', 'failed'] as const
/** Unstored but still to be stored by the writers (a dead letter waits for a replay instead). */
const QUEUED_STATES = UNSTORED_STATES.filter((state) => state !== 'failed')

/** Batches one store holds and another does not yet: per store queue, what it lacks. */
export interface UnevenBatches {
  /** Per store queue: the store jobs (id and payload) whose batch every other store has stored. */
  lacking: Record<string, { id: string; payload: StoreBatchPayload }[]>
}

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

    /**
     * The batches one store has stored and another has not: a job queued (not a dead letter) in one
     * store queue whose batch (its flow, one job per store queue, named by batch_id) has no unstored
     * job in any other. Taken while the writers are held, it says what each store of a backup
     * lacks; with the writers running it is a moment's guess.
     */
    async unevenBatches(): Promise<UnevenBatches> {
      const entries = await Promise.all(
        [...queues].map(async ([name, queue]) => {
          const [queued, failed] = await Promise.all([
            queue.getJobs([...QUEUED_STATES], 0, -1),
            queue.getJobs(['failed'], 0, -1),
          ])
          const present = queued.filter((job): job is Job<StoreBatchPayload> => Boolean(job?.id && job.data))
          const unstored = new Set([...present, ...failed].map((job) => job?.data?.batch_id))
          return { name, queued: present, unstored }
        }),
      )
      const lacking: UnevenBatches['lacking'] = {}
      for (const { name, queued } of entries) {
        const others = entries.filter((entry) => entry.name !== name)
        lacking[name] = queued
          .filter((job) => others.every((other) => !other.unstored.has(job.data.batch_id)))
          .map((job) => ({ id: job.id as string, payload: job.data }))
      }
      return { lacking }
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
