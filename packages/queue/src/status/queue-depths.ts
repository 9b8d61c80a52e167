import { Queue } from 'bullmq'
import { bullPrefix, type QueueKey, queueCatalog, storeQueues } from '../catalog.js'
import { allPartitions, partitionPrefix, type QueueLayout } from '../partitions.js'
import { onSharedConnection, type RedisConnection } from '../redis/connection.js'

export type JobCounts = Record<'waiting' | 'active' | 'delayed' | 'failed' | 'prioritized', number>

/** One queue of one partition, and its jobs per state. */
export interface PartitionDepth {
  partition: number
  queue: string
  counts: JobCounts
}

/**
 * Reads how many jobs each store queue (or each of `keys`) holds per state (health, metrics,
 * dashboards), in each of `partitions` (every partition of the layout unless given).
 */
export function createQueueDepths(
  connection: RedisConnection,
  layout: QueueLayout,
  keys: readonly QueueKey[] = storeQueues,
  partitions: readonly number[] = allPartitions(layout),
) {
  const queues = partitions.flatMap((partition) =>
    keys.map((key) => ({
      partition,
      queue: new Queue(queueCatalog[key].name, {
        connection,
        prefix: bullPrefix(partitionPrefix(layout, partition)),
        ...onSharedConnection,
      }),
    })),
  )
  async function readByPartition(): Promise<PartitionDepth[]> {
    const counts = await Promise.all(
      queues.map(({ queue }) => queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'prioritized')),
    )
    return queues.map(({ partition, queue }, i) => ({
      partition,
      queue: queue.name,
      counts: counts[i] as JobCounts,
    }))
  }
  return {
    /** Each queue's jobs per state, summed over the partitions. */
    read: async () => summedOverPartitions(await readByPartition()),
    readByPartition,
    close: () => Promise.all(queues.map(({ queue }) => queue.close())).then(() => undefined),
  }
}

export type QueueDepths = ReturnType<typeof createQueueDepths>

/** Each queue's jobs per state, summed over the partitions. */
export function summedOverPartitions(depths: readonly PartitionDepth[]): Record<string, JobCounts> {
  const totals: Record<string, JobCounts> = {}
  for (const { queue, counts } of depths) {
    const total: Record<string, number> = totals[queue] ?? {}
    for (const [state, count] of Object.entries(counts)) total[state] = (total[state] ?? 0) + count
    totals[queue] = total as JobCounts
  }
  return totals
}
