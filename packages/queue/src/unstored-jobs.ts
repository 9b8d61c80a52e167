import { setTimeout as sleep } from 'node:timers/promises'
import { pointsInPayload, type StoreBatchPayload } from '@iotflow/contracts'
import { Job, Queue } from 'bullmq'
import { bullPrefix, queueCatalog, storeQueues } from './catalog.js'
import { onSharedConnection, type RedisConnection } from './connection.js'

const HOLD_POLL_MS = 50

/** The states of a store job whose points are not stored yet; `failed` is a dead letter. */
const UNSTORED_STATES = ['wait', 'paused', 'active', 'delayed', 'prioritized', 'failed'] as const

/**
 * Which acknowledged points are not stored yet, job by job, in each store queue, and a hold on the
 * writers: what a backup needs to take both stores at one moment. A store job is removed once its batch is committed (or kept as completed), so a job
 * that is gone was stored; one in the failed set was not (it waits for a replay).
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
      return jobs.reduce((sum, job) => sum + (job ? pointsInPayload(job.data) : 0), 0)
    },

    /**
     * Holds the store writers: pauses every store queue (new and retried jobs wait; the gateway and
     * the bridge go on acknowledging) and resolves once no job is active, so neither store changes
     * until `release`. Queues paused before (by an operator) are left as they were by `release`.
     */
    async hold(idleTimeoutMs: number): Promise<{ release(): Promise<void> }> {
      const paused: Queue[] = []
      for (const queue of queues.values()) {
        if (await queue.isPaused()) continue
        await queue.pause()
        paused.push(queue)
      }
      const release = () => Promise.all(paused.map((q) => q.resume())).then(() => undefined)
      const deadline = Date.now() + idleTimeoutMs
      for (;;) {
        const active = await Promise.all([...queues.values()].map((q) => q.getActiveCount()))
        if (active.every((n) => n === 0)) return { release }
        if (Date.now() >= deadline) {
          await release()
          throw new Error(`the writers did not finish their running batches in ${idleTimeoutMs} ms`)
        }
        await sleep(HOLD_POLL_MS)
      }
    },

    close: () => Promise.all([...queues.values()].map((q) => q.close())).then(() => undefined),
  }
}

export type UnstoredJobs = ReturnType<typeof createUnstoredJobs>
