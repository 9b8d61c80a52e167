import { Queue } from 'bullmq'
import { bullPrefix, type QueueKey, queueCatalog, storeQueues } from './catalog.js'
import { onSharedConnection, type RedisConnection } from './connection.js'

export type JobCounts = Record<'waiting' | 'active' | 'delayed' | 'failed' | 'prioritized', number>

/** Reads how many jobs each store queue (or each of `keys`) holds per state (health, metrics, dashboards). */
export function createQueueDepths(
  connection: RedisConnection,
  queuePrefix: string,
  keys: readonly QueueKey[] = storeQueues,
) {
  const queues = keys.map(
    (key) =>
      new Queue(queueCatalog[key].name, {
        connection,
        prefix: bullPrefix(queuePrefix),
        ...onSharedConnection,
      }),
  )
  return {
    async read(): Promise<Record<string, JobCounts>> {
      const counts = await Promise.all(
        queues.map((q) => q.getJobCounts('waiting', 'active', 'delayed', 'failed', 'prioritized')),
      )
      return Object.fromEntries(queues.map((q, i) => [q.name, counts[i] as JobCounts]))
    },
    close: () => Promise.all(queues.map((q) => q.close())).then(() => undefined),
  }
}

export type QueueDepths = ReturnType<typeof createQueueDepths>
